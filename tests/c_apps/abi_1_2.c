/* The C hello application as a library built against ABI 1.2: its table is as long as
 * today's, but it predates upgrades, so the host never offers it one and refuses its 101. */
#include <rustapp.h>

#define HELLO_ABI_MINOR 2
#include "hello.c"
