/* The checkpoint layer's test seam (checkpt_private.h): the tuning sizes at
 * their production values, and the hook, unset. */
#include "checkpt_private.h"

checkpt_tuning_t wksp_private_checkpt_tuning = {
    .par_buf_max = 32ull << 20,
    .split_min = 4ull << 20,
    .warm_sz = 256ull << 10,
    .pipe_frame_max = 8ull << 20,
};

int (*wksp_private_checkpt_test_hook)(int point, const checkpt_hook_t *h);
