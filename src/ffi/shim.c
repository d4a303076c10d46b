#include "shim.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>
#include <apr_portable.h>
#include <apr_poll.h>
#include <apr_strings.h>
#include <apr_optional_hooks.h>
#include <mod_status.h>
#include <string.h>
#include <unistd.h>

const apr_table_entry_t *rustapp_shim_table_entries(const apr_table_t *table, int *count)
{
    const apr_array_header_t *entries = apr_table_elts(table);
    *count = entries->nelts;
    return (const apr_table_entry_t *)entries->elts;
}

apr_bucket_brigade *rustapp_shim_brigade_create(request_rec *r)
{
    return apr_brigade_create(r->pool, r->connection->bucket_alloc);
}

apr_ssize_t rustapp_shim_read_body(request_rec *r, apr_bucket_brigade *bb, char *buf,
                                   apr_size_t len, int *eos, int *http_status)
{
    apr_size_t got = 0;

    /* A blocking read may still hand back only metadata (a flush bucket): read again until
     * there are bytes or the end of the body. */
    while (got == 0 && !*eos && len > 0) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                         APR_BLOCK_READ, len);
        if (rv != APR_SUCCESS) {
            apr_brigade_cleanup(bb);
            /* APR_ENOSPC (LimitRequestBody) becomes 413, a malformed chunk 400, and so on. */
            *http_status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
            r->connection->keepalive = AP_CONN_CLOSE;
            return -1;
        }
        if (APR_BRIGADE_EMPTY(bb)) {
            *eos = 1; /* a filter that returns nothing on a blocking read has nothing more */
            break;
        }
        if (APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(bb))) {
            *eos = 1;
        }
        got = len;
        rv = apr_brigade_flatten(bb, buf, &got);
        apr_brigade_cleanup(bb);
        if (rv != APR_SUCCESS) {
            *http_status = HTTP_INTERNAL_SERVER_ERROR;
            return -1;
        }
    }
    return (apr_ssize_t)got;
}

/* Apache's request body filter answers `Expect: 100-continue` only on a blocking read (a
 * non-blocking reader may not want the body yet): a reader that does want it, without
 * waiting, sends the interim response itself, as the filter would, or the client never
 * sends its body. (On an HTTP/2 stream mod_http2 turns the line into an interim HEADERS
 * frame, as it does the filter's.) */
static apr_status_t send_continue_if_expected(request_rec *r)
{
    apr_bucket_brigade *bb;
    const char *line;

    if (!r->expecting_100 || r->proto_num < HTTP_VERSION(1, 1) || r->eos_sent
        || r->bytes_sent || !ap_is_HTTP_SUCCESS(r->status)) {
        return APR_SUCCESS;
    }
    r->expecting_100 = 0;
    line = apr_pstrcat(r->pool, AP_SERVER_PROTOCOL " ", ap_get_status_line(HTTP_CONTINUE),
                       CRLF CRLF, NULL);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(line, strlen(line), r->pool,
                                                       r->connection->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(r->connection->bucket_alloc));
    return ap_pass_brigade(r->connection->output_filters, bb);
}

apr_ssize_t rustapp_shim_read_body_now(request_rec *r, apr_bucket_brigade *bb, char *buf,
                                       apr_size_t len, int *eos, int *http_status)
{
    apr_size_t got = len;
    apr_status_t rv;

    if (*eos || len == 0) {
        return 0;
    }
    if (send_continue_if_expected(r) != APR_SUCCESS) {
        *http_status = HTTP_BAD_REQUEST;
        r->connection->keepalive = AP_CONN_CLOSE;
        return -1;
    }
    rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_NONBLOCK_READ, len);
    if (APR_STATUS_IS_EAGAIN(rv)) {
        apr_brigade_cleanup(bb);
        return -2;
    }
    if (rv != APR_SUCCESS) {
        apr_brigade_cleanup(bb);
        *http_status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        r->connection->keepalive = AP_CONN_CLOSE;
        return -1;
    }
    if (!APR_BRIGADE_EMPTY(bb) && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(bb))) {
        *eos = 1;
    }
    rv = apr_brigade_flatten(bb, buf, &got);
    apr_brigade_cleanup(bb);
    if (rv != APR_SUCCESS) {
        *http_status = HTTP_INTERNAL_SERVER_ERROR;
        return -1;
    }
    /* Only metadata (a flush) and no end: nothing has arrived yet. */
    return (got == 0 && !*eos) ? -2 : (apr_ssize_t)got;
}

int rustapp_shim_input_fd(request_rec *r)
{
    apr_pollfd_t pfd;
    apr_interval_time_t timeout = -1;
    apr_os_sock_t sock;
    apr_os_file_t file;

    memset(&pfd, 0, sizeof(pfd));
    pfd.p = r->pool;
    if (ap_get_pollfd_from_conn(r->connection, &pfd, &timeout) != APR_SUCCESS) {
        return -1;
    }
    if (pfd.desc_type == APR_POLL_SOCKET && apr_os_sock_get(&sock, pfd.desc.s) == APR_SUCCESS) {
        return sock;
    }
    if (pfd.desc_type == APR_POLL_FILE && apr_os_file_get(&file, pfd.desc.f) == APR_SUCCESS) {
        return file;
    }
    return -1;
}

void rustapp_shim_abort_response(request_rec *r)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);

    /* Before the head went out, Apache turns the error bucket into an error page: the
     * application failed, so that is a 500. After it, only 502 (or 504) makes the chunk
     * filter leave out the final chunk, so the client sees a truncated body. */
    int status = r->sent_bodyct ? HTTP_BAD_GATEWAY : HTTP_INTERNAL_SERVER_ERROR;

    r->no_cache = 1;
    c->keepalive = AP_CONN_CLOSE;
    APR_BRIGADE_INSERT_TAIL(bb, ap_bucket_error_create(status, NULL, r->pool, c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(c->bucket_alloc));
    ap_pass_brigade(r->output_filters, bb);
}

int rustapp_shim_client_socket_fd(request_rec *r)
{
    conn_rec *c = r->connection;
    apr_socket_t *socket;
    apr_os_sock_t fd;

    if (c->master != NULL) {
        return -1;
    }
    socket = ap_get_conn_socket(c);
    if (socket == NULL || apr_os_sock_get(&fd, socket) != APR_SUCCESS) {
        return -1;
    }
    return fd;
}

int rustapp_shim_tunnel_open(request_rec *r, const char *upgrade, apr_size_t upgrade_len,
                             int *shared)
{
    conn_rec *c = r->connection;

    r->status = HTTP_SWITCHING_PROTOCOLS;
    r->status_line = ap_get_status_line(HTTP_SWITCHING_PROTOCOLS);
    apr_table_setn(r->headers_out, "Upgrade", apr_pstrmemdup(r->pool, upgrade, upgrade_len));
    apr_table_setn(r->headers_out, "Connection", "Upgrade");
    /* A switch has no body to measure (over HTTP/2 it becomes a 200 whose data is the new
     * protocol's, which a length would cut short). */
    apr_table_unset(r->headers_out, "Content-Length");
    ap_send_interim_response(r, 1);

    /* From here on the connection carries the new protocol: no request timeouts, no
     * coalescing of small TLS writes, no HTTP framing (finishing the request passes its end
     * straight to the connection), and no keep-alive afterwards. */
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    ap_remove_output_filter_byhandle(c->output_filters, "SSL/TLS Coalescing Filter");
    r->output_filters = r->proto_output_filters = c->output_filters;
    r->input_filters = r->proto_input_filters = c->input_filters;
    c->keepalive = AP_CONN_CLOSE;
    *shared = c->master != NULL;
    return rustapp_shim_input_fd(r);
}

apr_ssize_t rustapp_shim_tunnel_read(request_rec *r, apr_bucket_brigade *bb, char *buf,
                                     apr_size_t len)
{
    conn_rec *c = r->connection;
    apr_size_t got = len;
    apr_status_t rv = ap_get_brigade(c->input_filters, bb, AP_MODE_READBYTES,
                                     APR_NONBLOCK_READ, len);

    if (APR_STATUS_IS_EAGAIN(rv)) {
        apr_brigade_cleanup(bb);
        return 0;
    }
    if (rv != APR_SUCCESS) {
        apr_brigade_cleanup(bb);
        return -1;
    }
    /* An end-of-stream bucket ends the request's body, not the connection: mod_http2 sends
     * one first on a WebSocket stream, whose data follows. The end of the connection is a
     * read that fails (APR_EOF). */
    rv = apr_brigade_flatten(bb, buf, &got);
    apr_brigade_cleanup(bb);
    if (rv != APR_SUCCESS) {
        return -1;
    }
    return (apr_ssize_t)got;
}

int rustapp_shim_tunnel_write(request_rec *r, apr_bucket_brigade *bb, const char *buf,
                              apr_size_t len)
{
    conn_rec *c = r->connection;
    apr_status_t rv;

    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(buf, len, c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
    rv = ap_pass_brigade(c->output_filters, bb);
    apr_brigade_cleanup(bb);
    return (rv == APR_SUCCESS && !c->aborted) ? 0 : -1;
}

apr_interval_time_t rustapp_shim_server_timeout(request_rec *r)
{
    return r->server->timeout;
}

const char *rustapp_shim_cgi_var(request_rec *r, int which)
{
    switch (which) {
    case 0: return ap_run_http_scheme(r);
    case 1: return ap_get_server_banner();
    case 2: return ap_document_root(r);
    case 3: return ap_context_prefix(r);
    case 4: return ap_context_document_root(r);
    case 5: return r->server->server_admin;
    case 6: return r->filename;
    default: return NULL;
    }
}

static apr_status_t close_fd(void *fd)
{
    close((int)(apr_uintptr_t)fd);
    return APR_SUCCESS;
}

int rustapp_shim_send_file(request_rec *r, int fd)
{
    apr_file_t *file = NULL;
    apr_os_file_t os_file = fd;
    apr_finfo_t finfo;
    apr_bucket_brigade *bb;
    int status;

    /* Closed with the request pool, after Apache wrote the last byte (which, with the event
     * MPM's write completion, may be after the handler returned). */
    apr_pool_cleanup_register(r->pool, (void *)(apr_uintptr_t)fd, close_fd, apr_pool_cleanup_null);
    if (apr_os_file_put(&file, &os_file, APR_FOPEN_READ | APR_FOPEN_SENDFILE_ENABLED, r->pool)
            != APR_SUCCESS
        || apr_file_info_get(&finfo, APR_FINFO_NORM, file) != APR_SUCCESS
        || finfo.filetype != APR_REG) {
        return HTTP_NOT_FOUND;
    }
    /* As the default handler serves a file: validators, then conditions, then the body;
     * the byterange filter answers Range requests. */
    r->finfo = finfo;
    ap_update_mtime(r, finfo.mtime);
    ap_set_last_modified(r);
    ap_set_etag(r);
    apr_table_setn(r->headers_out, "Accept-Ranges", "bytes");
    status = ap_meets_conditions(r);
    if (status != OK) {
        return status;
    }
    ap_set_content_length(r, finfo.size);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    if (!r->header_only) {
        apr_brigade_insert_file(bb, file, 0, finfo.size, r->pool);
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    return OK;
}

/* Writes one trailer field after the last chunk's "0\r\n". */
static int append_trailer(void *out, const char *name, const char *value)
{
    apr_bucket_brigade *bb = out;
    apr_brigade_printf(bb, NULL, NULL, "%s: %s\r\n", name, value);
    return 1;
}

/* Runs after Apache's chunk filter, which ends a chunked body with the immortal bucket
 * "0\r\n\r\n" before the end-of-stream: that bucket becomes the last chunk with
 * r->trailers_out in it. A response that is not chunked (a length, HTTP/1.0) passes as is. */
static apr_status_t trailers_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    apr_bucket *e;

    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = APR_BUCKET_NEXT(e)) {
        apr_bucket *last_chunk;
        const char *data;
        apr_size_t len;
        apr_bucket_brigade *trailers;

        if (!APR_BUCKET_IS_EOS(e)) {
            continue;
        }
        last_chunk = APR_BUCKET_PREV(e);
        if (last_chunk == APR_BRIGADE_SENTINEL(bb) || !APR_BUCKET_IS_IMMORTAL(last_chunk)
            || last_chunk->length != 5
            || apr_bucket_read(last_chunk, &data, &len, APR_BLOCK_READ) != APR_SUCCESS
            || len != 5 || memcmp(data, "0\r\n\r\n", 5) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "mod_rustapp: the response is not chunked; its trailers are dropped");
            break;
        }
        trailers = apr_brigade_create(r->pool, f->c->bucket_alloc);
        apr_brigade_puts(trailers, NULL, NULL, "0\r\n");
        apr_table_do(append_trailer, trailers, r->trailers_out, NULL);
        apr_brigade_puts(trailers, NULL, NULL, "\r\n");
        apr_bucket_delete(last_chunk);
        /* Move the trailers' buckets in front of the end-of-stream. */
        while (!APR_BRIGADE_EMPTY(trailers)) {
            apr_bucket *piece = APR_BRIGADE_FIRST(trailers);
            APR_BUCKET_REMOVE(piece);
            APR_BUCKET_INSERT_BEFORE(e, piece);
        }
        break;
    }
    return ap_pass_brigade(f->next, bb);
}

void rustapp_shim_register_filters(void)
{
    /* After the chunk filter (AP_FTYPE_TRANSCODE), before the connection's. */
    ap_register_output_filter("RUSTAPP_TRAILERS", trailers_filter, NULL,
                              AP_FTYPE_TRANSCODE + 5);
}

void rustapp_shim_add_trailers_filter(request_rec *r)
{
    ap_add_output_filter("RUSTAPP_TRAILERS", NULL, r, r->connection);
}

int rustapp_shim_is_http2(request_rec *r)
{
    return r->connection->master != NULL;
}

void rustapp_shim_hook_status(int (*hook)(request_rec *r, int flags))
{
    APR_OPTIONAL_HOOK(ap, status_hook, hook, NULL, NULL, APR_HOOK_MIDDLE);
}

int rustapp_shim_status_is_short(int flags)
{
    return (flags & AP_STATUS_SHORT) != 0;
}
