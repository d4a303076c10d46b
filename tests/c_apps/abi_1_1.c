/* The C hello application as a library built against ABI 1.1 exports it: its table ends
 * before body_ready_fd, which ABI 1.2 appended, so its bodies must stay on their thread. The
 * host must still load and serve it, embedded and in a daemon group. */
#include <stddef.h>
#include <rustapp.h>

#define HELLO_TABLE_SIZE offsetof(RustAppV1, body_ready_fd)
#define HELLO_ABI_MINOR 1
#include "hello.c"
