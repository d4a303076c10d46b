/*
 * The least any handler inside Apache does to answer the bench's unary gRPC call: read the
 * request body to its end (the client's message), send one message and `grpc-status: 0` in
 * the trailers. It does not decode or encode protocol buffers: its answer is the one
 * examples/grpc-site's Say gives the bench's call (Note { text: "hello bench", number: 1 }),
 * so tonic's own client accepts it. Shared by the C handler and the C ceiling, whose gRPC
 * rows bound what mod_rustapp's two modes can reach.
 */
#ifndef BENCH_GRPC_ANSWER_H
#define BENCH_GRPC_ANSWER_H

#include <string.h>

#include "apr_tables.h"
#include "httpd.h"
#include "http_protocol.h"

/* gRPC calls are POSTs: the hello rows' GETs cost no header lookup here. */
static int is_grpc_call(const request_rec *r)
{
    const char *type;
    if (r->method_number != M_POST) {
        return 0;
    }
    type = apr_table_get(r->headers_in, "Content-Type");
    return type && strncmp(type, "application/grpc", 16) == 0;
}

/* Reads the call's body to its end, as Apache's classic client-block API does for a handler. */
static int read_grpc_call(request_rec *r)
{
    char buf[1024];
    long got;
    int status = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    if (status != OK) {
        return status;
    }
    if (ap_should_client_block(r)) {
        while ((got = ap_get_client_block(r, buf, sizeof buf)) > 0) {
        }
        if (got < 0) {
            return HTTP_BAD_REQUEST;
        }
    }
    return OK;
}

static int answer_grpc_call(request_rec *r)
{
    /* The 5-byte gRPC prefix (not compressed, 15 bytes), then the Note. */
    static const char answer[] = "\0\0\0\0\x0f\x0a\x0bhello bench\x10\x01";
    int status = read_grpc_call(r);
    if (status != OK) {
        return status;
    }
    ap_set_content_type(r, "application/grpc");
    apr_table_setn(r->trailers_out, "grpc-status", "0");
    ap_rwrite(answer, sizeof answer - 1, r);
    return OK;
}

#endif
