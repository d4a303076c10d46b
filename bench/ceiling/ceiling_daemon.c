/*
 * The daemon half of the ceiling case: one thread, one epoll set; on every connection, for
 * each 640 bytes read, 64 bytes written. Usage: ceiling_daemon SOCKET-PATH
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define HEAD_BYTES 640
#define ANSWER_BYTES 64
#define MAX_FD 65536

static unsigned pending[MAX_FD]; /* head bytes read but not yet answered, per connection */

int main(int argc, char **argv)
{
    struct sockaddr_un addr;
    struct epoll_event ev, events[256];
    static const char answer[ANSWER_BYTES];
    char buf[64 * 1024];
    int listener, ep;

    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET-PATH\n", argv[0]);
        return 2;
    }
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    unlink(argv[1]);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0
        || chmod(argv[1], 0777) != 0 || listen(listener, 512) != 0) {
        perror("ceiling_daemon: listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.fd = listener;
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int conn;
                while ((conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
                    if (conn >= MAX_FD) {
                        close(conn);
                        continue;
                    }
                    pending[conn] = 0;
                    ev.events = EPOLLIN;
                    ev.data.fd = conn;
                    epoll_ctl(ep, EPOLL_CTL_ADD, conn, &ev);
                }
                continue;
            }
            ssize_t got = read(fd, buf, sizeof buf);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN) {
                    continue;
                }
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                continue;
            }
            pending[fd] += (unsigned)got;
            while (pending[fd] >= HEAD_BYTES) {
                pending[fd] -= HEAD_BYTES;
                if (write(fd, answer, sizeof answer) != (ssize_t)sizeof answer) {
                    break;
                }
            }
        }
    }
}
