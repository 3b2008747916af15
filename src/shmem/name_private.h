/* The workspace name rule (docs/FORMAT.md 1.2) for layers that check names
 * found in their input (checkpoint headers) but need nothing else of the
 * shmem layer: shmem_private.h is that layer's internal interface. */
#ifndef WKSP_SHMEM_NAME_PRIVATE_H
#define WKSP_SHMEM_NAME_PRIVATE_H

#include <stddef.h>

/* The one implementation of the name rule, without recording an error: the
 * name's length (1..39) if the first 40 bytes at name hold a valid
 * NUL-terminated name, else 0.  Used wherever a name is checked quietly
 * (directory listings, checkpoint fields); wksp_name_check is the same rule
 * with a message.  Thread-safe (reads name only). */
size_t wksp_private_name_len(const char *name);

#endif
