/*
 * The ceiling for any handler inside Apache: a minimal C module answering "Hello World!".
 * It claims its URL the way mod_rustapp claims an alias (translate_name + map_to_storage),
 * so both skip the same filesystem walk and the comparison is like for like. A gRPC call
 * (Content-Type application/grpc) gets the least answer one can have (grpc_answer.h).
 */
#include <string.h>

#include "apr_strings.h"
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"

#include "grpc_answer.h"

static const char *const handler_name = "hello-c";

static int hello_translate(request_rec *r)
{
    if (strncmp(r->uri, "/c", 2) != 0 || (r->uri[2] != '\0' && r->uri[2] != '/')) {
        return DECLINED;
    }
    r->handler = handler_name;
    r->filename = apr_pstrdup(r->pool, "hello-c");
    return OK;
}

static int hello_map_to_storage(request_rec *r)
{
    return (r->handler && strcmp(r->handler, handler_name) == 0) ? OK : DECLINED;
}

static int hello_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, handler_name) != 0) {
        return DECLINED;
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
    ap_hook_translate_name(hello_translate, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_map_to_storage(hello_map_to_storage, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(hello_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA hello_c_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks,
};
