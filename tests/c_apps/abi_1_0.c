/* The C hello application as a library built against ABI 1.0 exports it: its table ends
 * before the user-store entry points that ABI 1.1 appended. The host must still load it. */
#include <stddef.h>
#include <rustapp.h>

#define HELLO_TABLE_SIZE offsetof(RustAppV1, check_password)
#define HELLO_ABI_MINOR 0
#include "hello.c"
