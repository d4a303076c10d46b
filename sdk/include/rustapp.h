/*
 * rustapp.h: the application ABI of mod_rustapp, version 1, for applications written in C or
 * any language with a C ABI. It mirrors sdk/src/abi.rs, the one definition of the ABI; Rust
 * applications use the rustapp crate instead.
 *
 * An application library exports one function:
 *
 *     const RustAppV1 *rustapp_app(void);
 *
 * returning a pointer to a static table. The host refuses a table whose abi_major differs
 * from its own. Every struct starts with its size so that later minor versions can append.
 * Memory is freed on the side that allocated it. The host's request functions may be called
 * only on the thread running that request's handle/body_next/body_close, during the call.
 * From ABI 1.2 on, an application accepts body_next and body_close of a body on any thread,
 * one call at a time (a daemon resumes a waiting body on whichever thread is free).
 * See sdk/src/abi.rs for the full contract.
 */
#ifndef RUSTAPP_H
#define RUSTAPP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RUSTAPP_ABI_MAJOR 1
#define RUSTAPP_ABI_MINOR 5
#define RUSTAPP_ENTRY_SYMBOL "rustapp_app"

/* Borrowed bytes, not NUL-terminated; ptr may be NULL when len is 0. */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} RustAppStr;

typedef struct RustAppHostRequest RustAppHostRequest; /* opaque: the host's request */
typedef struct RustAppHostApp RustAppHostApp;         /* opaque: the host's instance context */

typedef void (*RustAppVisitFn)(void *context, RustAppStr name, RustAppStr value);

enum {
    RUSTAPP_LOG_ERROR = 1,
    RUSTAPP_LOG_WARN = 2,
    RUSTAPP_LOG_INFO = 3,
    RUSTAPP_LOG_DEBUG = 4,
    RUSTAPP_LOG_TRACE = 5
};

typedef struct {
    uint32_t size;
    int32_t (*header)(const RustAppHostRequest *request, RustAppStr name, RustAppStr *value);
    void (*each_header)(const RustAppHostRequest *request, RustAppVisitFn visit, void *context);
    int32_t (*var)(const RustAppHostRequest *request, RustAppStr name, RustAppStr *value);
    void (*each_var)(const RustAppHostRequest *request, RustAppVisitFn visit, void *context);
    ssize_t (*read_body)(RustAppHostRequest *request, uint8_t *buf, size_t len);
    int32_t (*set_status)(RustAppHostRequest *request, uint32_t status);
    int32_t (*add_header)(RustAppHostRequest *request, RustAppStr name, RustAppStr value);
    void (*log_request)(const RustAppHostRequest *request, uint32_t level, RustAppStr message);
    void (*log_app)(const RustAppHostApp *app, uint32_t level, RustAppStr message);
    uint32_t (*max_log_level)(const RustAppHostApp *app);
    /* ABI 1.2 (read only when size covers it): non-zero when body_next may answer
     * RUSTAPP_BODY_PENDING. */
    uint32_t accepts_pending;
    /* ABI 1.3 (read only when size covers it): takes over the connection of a request that
     * offers an upgrade (RustAppRequestV1.upgrade not empty), during handle. Returns a
     * connected AF_UNIX stream socket the application owns and closes, or -1. The application
     * then answers 101 with an Upgrade header naming an offered protocol and no body; the
     * host relays bytes between the client and that socket until either side closes. */
    int32_t (*accept_upgrade)(RustAppHostRequest *request);
    /* ABI 1.4 (read only when size covers it). add_trailer: a response trailer, sent after
     * the body (HTTP/2 trailers; over HTTP/1.1 only to a client that sent TE: trailers),
     * during handle or body_next: 0, or -1 when refused (dropped and logged). each_trailer:
     * the request's trailers, once the body was read to its end. read_body_now: read_body
     * that never waits: RUSTAPP_READ_WOULD_BLOCK when nothing has arrived yet. input_fd: see
 * below. */
    int32_t (*add_trailer)(RustAppHostRequest *request, RustAppStr name, RustAppStr value);
    void (*each_trailer)(const RustAppHostRequest *request, RustAppVisitFn visit, void *context);
    ssize_t (*read_body_now)(RustAppHostRequest *request, uint8_t *buf, size_t len);
    /* ABI 1.4: a descriptor that becomes readable when more request body may have arrived,
     * to poll during handle (owned by the host, valid until handle returns), or -1. */
    int32_t (*input_fd)(const RustAppHostRequest *request);
    /* ABI 1.5: every request variable, as each_var visits them, written into buf as
     * NAME\0VALUE\0 pairs (names and values hold no NUL). Returns the length of all the
     * pairs; when that exceeds len, buf's content is unspecified and the application calls
     * again with that much room. Never writes past len. */
    size_t (*copy_vars)(const RustAppHostRequest *request, uint8_t *buf, size_t len);
    /* ABI 1.5: the whole response body, during handle, for a body complete at once and at
     * most RUSTAPP_WHOLE_BODY_MAX bytes: the host copies it and handle then gives no body
     * (*body stays NULL). 0, or -1 when the host does not take it this way (larger, given
     * already, or outside handle): give it as usual then. A body handle gives all the same
     * wins over the copy. Trailers added during handle follow it. */
    int32_t (*set_body)(RustAppHostRequest *request, RustAppStr body);
} RustAppHostV1;

#define RUSTAPP_READ_WOULD_BLOCK (-2)
#define RUSTAPP_WHOLE_BODY_MAX (64 * 1024)

typedef struct {
    RustAppStr name;
    RustAppStr value;
} RustAppSetting;

typedef struct {
    uint32_t size;
    const RustAppHostApp *host_app;
    RustAppStr mount_point;
    RustAppStr library_path;
    const RustAppSetting *settings;
    size_t settings_len;
} RustAppConfigV1;

typedef struct {
    uint32_t size;
    RustAppHostRequest *host_request;
    RustAppStr method;
    RustAppStr uri;
    RustAppStr protocol;
    RustAppStr script_name;
    RustAppStr path_info;
    RustAppStr query_string;
    int64_t content_length; /* -1 when unknown */
    /* ABI 1.3 (read only when size covers it): the protocols the client offers to switch to
     * (its Upgrade header) when the host can hand the connection over; empty otherwise.
     * Offered only to applications whose abi_minor is 3 or more. */
    RustAppStr upgrade;
} RustAppRequestV1;

typedef struct {
    const uint8_t *data;
    size_t len;
} RustAppChunkV1;

enum {
    RUSTAPP_BODY_ERROR = -1,
    RUSTAPP_BODY_DATA = 0,
    RUSTAPP_BODY_FLUSH = 1,
    RUSTAPP_BODY_END = 2,
    /* ABI 1.2, only to a host that accepts_pending: nothing yet. The host calls body_next
     * again once the descriptor body_ready_fd gives is readable (or body_close). */
    RUSTAPP_BODY_PENDING = 3,
    /* ABI 1.4: as RUSTAPP_BODY_PENDING, and the body also waits for request body that
     * read_body_now did not have yet; body_next is called again once either came. */
    RUSTAPP_BODY_PENDING_INPUT = 4
};

/* ABI 1.1: the user store, for Apache's authentication (AuthBasicProvider rustapp). */
typedef void (*RustAppReceiveFn)(void *context, RustAppStr value);

typedef struct {
    uint32_t size;
    const RustAppRequestV1 *request; /* headers (never Authorization) and variables; no body */
    RustAppStr user;
    RustAppStr secret; /* check_password: the password; realm_hash: the realm; else empty */
} RustAppAuthCheckV1;

enum {
    RUSTAPP_AUTH_UNSUPPORTED = -2, /* no user store, or not this question */
    RUSTAPP_AUTH_ERROR = -1,       /* failed (logged); the request gets a 500 */
    RUSTAPP_AUTH_OK = 0,           /* granted / groups or hash received */
    RUSTAPP_AUTH_NO_USER = 1,
    RUSTAPP_AUTH_DENIED = 2        /* check_password: wrong password */
};

typedef int32_t (*RustAppAuthFn)(const void *instance, const RustAppAuthCheckV1 *check,
                                 RustAppReceiveFn receive, void *context);

typedef struct {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t size; /* sizeof(RustAppV1) as the application was built */
    RustAppStr name;
    int32_t (*create)(const RustAppHostV1 *host, const RustAppConfigV1 *config, void **instance);
    int32_t (*handle)(const void *instance, const RustAppRequestV1 *request, void **body);
    int32_t (*body_next)(void *body, RustAppChunkV1 *chunk);
    void (*body_close)(void *body);
    void (*destroy)(void *instance);
    /* ABI 1.1, optional (NULL when the application has no user store): */
    RustAppAuthFn check_password;  /* may receive() the canonical user name */
    RustAppAuthFn groups_for_user; /* receive()s each group name */
    RustAppAuthFn realm_hash;      /* receive()s hex MD5(user:realm:password) */
    /* ABI 1.2, required of an application that answers RUSTAPP_BODY_PENDING: a descriptor,
     * owned by the body until body_close, that becomes readable when the body can go on. */
    int32_t (*body_ready_fd)(void *body);
} RustAppV1;

#define RUSTAPP_STR(literal) ((RustAppStr){(const uint8_t *)(literal), sizeof(literal) - 1})

#ifdef __cplusplus
}
#endif

#endif /* RUSTAPP_H */
