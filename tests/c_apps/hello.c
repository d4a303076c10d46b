/* A C application written against sdk/include/rustapp.h: proves the header matches the ABI.
 * Its /switch path takes the connection over (ABI 1.3) and echoes what the client sends; its
 * /whole path hands its greeting over whole during handle (ABI 1.5), after trying a body
 * larger than the host takes that way. */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <rustapp.h>

struct instance {
    const RustAppHostV1 *host;
    char greeting[64];
};

struct body {
    const char *text;
    int sent;
};

static int32_t create(const RustAppHostV1 *host, const RustAppConfigV1 *config, void **out)
{
    struct instance *app = calloc(1, sizeof *app);
    size_t i;
    app->host = host;
    strcpy(app->greeting, "Hello from C");
    for (i = 0; i < config->settings_len; i++) {
        const RustAppSetting *s = &config->settings[i];
        if (s->name.len == 8 && memcmp(s->name.ptr, "GREETING", 8) == 0 && s->value.len < 64) {
            memcpy(app->greeting, s->value.ptr, s->value.len);
            app->greeting[s->value.len] = 0;
        }
    }
    host->log_app(config->host_app, RUSTAPP_LOG_INFO, RUSTAPP_STR("c-hello created"));
    *out = app;
    return 0;
}

#ifndef HELLO_ABI_MINOR
#define HELLO_ABI_MINOR RUSTAPP_ABI_MINOR
#endif

/* Echoes a taken-over connection until the client closes it. */
static void *echo(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (write(fd, buf, (size_t)n) != n) {
            break;
        }
    }
    close(fd);
    return NULL;
}

/* Answers 101 to protocol "echo". An application built for ABI 1.3 takes the connection
 * first; one built for an earlier minor cannot, so its 101 is refused (the client gets 500). */
static int32_t switch_to_echo(const struct instance *app, const RustAppRequestV1 *request)
{
#if HELLO_ABI_MINOR >= 3
    pthread_t thread;
    int fd = -1;
    if (request->size >= offsetof(RustAppRequestV1, upgrade) + sizeof(RustAppStr) &&
        request->upgrade.len > 0 &&
        app->host->size >= offsetof(RustAppHostV1, accept_upgrade) + sizeof(void *)) {
        fd = app->host->accept_upgrade(request->host_request);
    }
    if (fd < 0 || pthread_create(&thread, NULL, echo, (void *)(intptr_t)fd) != 0) {
        return 1;
    }
    pthread_detach(thread);
#else
    (void)echo;
#endif
    app->host->set_status(request->host_request, 101);
    app->host->add_header(request->host_request, RUSTAPP_STR("Upgrade"), RUSTAPP_STR("echo"));
    return 0;
}

/* The greeting handed over whole, "too large: refused; " in front of it saying that the host
 * refused the larger body first. 0 when done this way, 1 when the host has no set_body. */
static int32_t hand_over_whole(const struct instance *app, const RustAppRequestV1 *request)
{
#if HELLO_ABI_MINOR >= 5
    static char large[RUSTAPP_WHOLE_BODY_MAX + 1];
    static char text[128];
    RustAppStr too_large = {(const uint8_t *)large, sizeof large};
    RustAppStr greeting;
    if (app->host->size < offsetof(RustAppHostV1, set_body) + sizeof(void *)) {
        return 1;
    }
    strcpy(text, app->host->set_body(request->host_request, too_large) == 0
                     ? "too large: taken; "
                     : "too large: refused; ");
    strcat(text, app->greeting);
    greeting.ptr = (const uint8_t *)text;
    greeting.len = strlen(text);
    return app->host->set_body(request->host_request, greeting) == 0 ? 0 : 1;
#else
    (void)app;
    (void)request;
    return 1;
#endif
}

static int32_t handle(const void *instance, const RustAppRequestV1 *request, void **out)
{
    const struct instance *app = instance;
    if (request->path_info.len == 7 && memcmp(request->path_info.ptr, "/switch", 7) == 0) {
        *out = NULL;
        return switch_to_echo(app, request);
    }
    RustAppStr type = RUSTAPP_STR("text/plain");
    app->host->set_status(request->host_request, 200);
    app->host->add_header(request->host_request, RUSTAPP_STR("Content-Type"), type);
    if (request->path_info.len == 6 && memcmp(request->path_info.ptr, "/whole", 6) == 0 &&
        hand_over_whole(app, request) == 0) {
        *out = NULL;
        return 0;
    }
    struct body *body = calloc(1, sizeof *body);
    body->text = app->greeting;
    *out = body;
    return 0;
}

static int32_t body_next(void *state, RustAppChunkV1 *chunk)
{
    struct body *body = state;
    if (body->sent) {
        return RUSTAPP_BODY_END;
    }
    body->sent = 1;
    chunk->data = (const uint8_t *)body->text;
    chunk->len = strlen(body->text);
    return RUSTAPP_BODY_DATA;
}

static void body_close(void *body) { free(body); }
static void destroy(void *instance) { free(instance); }

/* abi_1_0.c and abi_1_1.c build this application as a library of an earlier minor version,
 * whose table is shorter. */
#ifndef HELLO_TABLE_SIZE
#define HELLO_TABLE_SIZE sizeof(RustAppV1)
#endif
/* No user store: the ABI 1.1 entry points stay NULL. */
static const RustAppV1 table = {
    RUSTAPP_ABI_MAJOR, HELLO_ABI_MINOR, HELLO_TABLE_SIZE, {(const uint8_t *)"c-hello", 7},
    create, handle, body_next, body_close, destroy,
};

const RustAppV1 *rustapp_app(void) { return &table; }
