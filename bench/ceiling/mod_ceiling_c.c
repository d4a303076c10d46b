/*
 * The ceiling for any daemon mode: the minimal C handler, but each request first writes a
 * 640-byte head to a UNIX socket and reads a 64-byte answer from ceiling_daemon (a
 * single-threaded epoll loop), over a connection each Apache thread keeps. Nothing a daemon
 * mode does can cost less than this round trip. The socket is $RUSTAPP_CEILING_SOCKET. A
 * gRPC call gets the least answer one can have (grpc_answer.h) after the same round trip.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "apr_strings.h"
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"

#include "grpc_answer.h"

#define HEAD_BYTES 640
#define ANSWER_BYTES 64

static const char *const handler_name = "ceiling-c";
static __thread int daemon_fd = -1;

static int ceiling_translate(request_rec *r)
{
    if (strncmp(r->uri, "/ceiling", 8) != 0 || (r->uri[8] != '\0' && r->uri[8] != '/')) {
        return DECLINED;
    }
    r->handler = handler_name;
    r->filename = apr_pstrdup(r->pool, "ceiling-c");
    return OK;
}

static int ceiling_map_to_storage(request_rec *r)
{
    return (r->handler && strcmp(r->handler, handler_name) == 0) ? OK : DECLINED;
}

static int connect_daemon(void)
{
    struct sockaddr_un addr;
    const char *path = getenv("RUSTAPP_CEILING_SOCKET");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || !path) {
        return -1;
    }
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One round trip: the head out, the whole answer back. */
static int round_trip(void)
{
    static const char head[HEAD_BYTES];
    char answer[ANSWER_BYTES];
    size_t got = 0;
    if (daemon_fd < 0 && (daemon_fd = connect_daemon()) < 0) {
        return -1;
    }
    if (write(daemon_fd, head, sizeof head) != (ssize_t)sizeof head) {
        goto broken;
    }
    while (got < sizeof answer) {
        ssize_t n = read(daemon_fd, answer + got, sizeof answer - got);
        if (n <= 0) {
            goto broken;
        }
        got += (size_t)n;
    }
    return 0;
broken:
    close(daemon_fd);
    daemon_fd = -1;
    return -1;
}

static int ceiling_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, handler_name) != 0) {
        return DECLINED;
    }
    if (round_trip() != 0) {
        return HTTP_BAD_GATEWAY;
    }
    if (is_grpc_call(r)) {
        return answer_grpc_call(r);
    }
    ap_set_content_type(r, "text/plain");
    ap_rwrite("Hello World!", 12, r);
    return OK;
}

static void register_hooks(apr_pool_t *p)
{
    ap_hook_translate_name(ceiling_translate, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_map_to_storage(ceiling_map_to_storage, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ceiling_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA ceiling_c_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks,
};
