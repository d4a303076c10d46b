/* The parts of httpd and APR that mod_rustapp uses; bindgen reads this file. */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_ssl.h>
#include <http_main.h>
#include <ap_mpm.h>
#include <ap_mmn.h>
#include <util_filter.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_pools.h>
#include <apr_buckets.h>
#include "shim.h"
