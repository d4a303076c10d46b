/* C helpers for httpd APIs that are macros or inline functions, which bindgen cannot call. */
#ifndef RUSTAPP_SHIM_H
#define RUSTAPP_SHIM_H

#include <httpd.h>
#include <apr_tables.h>
#include <apr_buckets.h>

/* The entries of an APR table (apr_table_elts is a macro over an opaque type). */
const apr_table_entry_t *rustapp_shim_table_entries(const apr_table_t *table, int *count);

/* Reads up to `len` bytes of the request body through Apache's input filters, so chunked
 * bodies are de-chunked and LimitRequestBody is enforced. Returns the number of bytes read,
 * 0 at the end of the body, or -1 on error with the HTTP status to answer in *http_status.
 * *eos must start at 0 and is set once the end of the body has been seen. */
apr_ssize_t rustapp_shim_read_body(request_rec *r, apr_bucket_brigade *bb, char *buf,
                                   apr_size_t len, int *eos, int *http_status);

/* As rustapp_shim_read_body, without waiting: -2 when nothing has arrived yet. */
apr_ssize_t rustapp_shim_read_body_now(request_rec *r, apr_bucket_brigade *bb, char *buf,
                                       apr_size_t len, int *eos, int *http_status);

/* The descriptor that becomes readable when the client sent more on this request's
 * connection: its socket, or for an HTTP/2 stream the pipe mod_http2 signals; -1 if none. */
int rustapp_shim_input_fd(request_rec *r);

/* Creates the brigade rustapp_shim_read_body uses for a request. */
apr_bucket_brigade *rustapp_shim_brigade_create(request_rec *r);

/* Ends a response that broke off midway so the client can tell: a 500 page if nothing was
 * sent yet; otherwise the chunk filter omits the final chunk and the connection closes. */
void rustapp_shim_abort_response(request_rec *r);

/* The descriptor of the client's connection when it is a socket of its own (HTTP/1.x, with or
 * without TLS), or -1 (an HTTP/2 stream shares its connection). */
int rustapp_shim_client_socket_fd(request_rec *r);


/* Switches the connection of `r` to the protocol `upgrade`: sends the 101 interim response
 * (with r->headers_out), takes the HTTP framing, request timeouts and TLS write coalescing
 * off the connection, and marks it not to be kept alive. Returns the descriptor to poll for
 * the client (a socket, or for an HTTP/2 stream the pipe mod_http2 signals), or -1; *shared
 * is set when the connection is an HTTP/2 stream. */
int rustapp_shim_tunnel_open(request_rec *r, const char *upgrade, apr_size_t upgrade_len,
                             int *shared);

/* Reads what the client sent through the connection's input filters without blocking:
 * the count, 0 when nothing is there now, -1 when the connection ended or failed. */
apr_ssize_t rustapp_shim_tunnel_read(request_rec *r, apr_bucket_brigade *bb, char *buf,
                                     apr_size_t len);

/* Writes and flushes bytes to the client through the connection's output filters: 0, or -1
 * when the client is gone. */
int rustapp_shim_tunnel_write(request_rec *r, apr_bucket_brigade *bb, const char *buf,
                              apr_size_t len);

/* The request's virtual host's Timeout, in microseconds. */
apr_interval_time_t rustapp_shim_server_timeout(request_rec *r);

/* The values Apache's own CGI environment (ap_add_common_vars) gives: 0 REQUEST_SCHEME,
 * 1 SERVER_SOFTWARE, 2 DOCUMENT_ROOT, 3 CONTEXT_PREFIX, 4 CONTEXT_DOCUMENT_ROOT,
 * 5 SERVER_ADMIN, 6 SCRIPT_FILENAME; NULL when unset. */
const char *rustapp_shim_cgi_var(request_rec *r, int which);

/* Sends the regular file open on `fd` as the response body, as Apache's default handler
 * sends a file: Last-Modified, ETag, conditional requests (304/412) and ranges. Takes `fd`
 * (closed with the request). OK, or the status to answer instead (304, 412, 404). */
int rustapp_shim_send_file(request_rec *r, int fd);

/* Registers RUSTAPP_TRAILERS, the output filter that writes r->trailers_out into the last
 * chunk of a chunked HTTP/1.1 response (Apache 2.4's chunk filter writes none). */
void rustapp_shim_register_filters(void);

/* Adds RUSTAPP_TRAILERS to the request's output filters. */
void rustapp_shim_add_trailers_filter(request_rec *r);

/* Whether the request is an HTTP/2 stream (mod_http2 sends r->trailers_out itself). */
int rustapp_shim_is_http2(request_rec *r);

/* Registers `hook` for mod_status's optional status hook (it runs if mod_status is loaded). */
void rustapp_shim_hook_status(int (*hook)(request_rec *r, int flags));

/* mod_status's flags: whether the page is the machine-readable one (?auto). */
int rustapp_shim_status_is_short(int flags);

#endif
