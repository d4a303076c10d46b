/* A library claiming an ABI major version this host does not speak. */
#include <rustapp.h>

static const RustAppV1 table = {99, 3, sizeof(RustAppV1), {0, 0}, 0, 0, 0, 0, 0};

const RustAppV1 *rustapp_app(void) { return &table; }
