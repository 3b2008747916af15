/* fuzz/fuzz_util.h: set-up shared by the fuzz targets that restore into a
 * workspace.  Harness failures abort (the fuzzer reports them as crashes).
 *
 * Speed: a target runs millions of times under ASan, where every system
 * call and every large allocation is costly, so what does not depend on
 * the input is made once per process: the target workspace, the memory
 * file (refilled per input), the /dev/null fd for printing.  Pipe inputs
 * whose restore spools them (docs/FORMAT.md 5 v1 files, garbage) spool into
 * TMPDIR: the harness points it at /dev/shm (tmpfs) when the caller did
 * not set it, since O_TMPFILE on a disk filesystem costs more than the
 * whole restore. */
#ifndef WKSP_FUZZ_UTIL_H
#define WKSP_FUZZ_UTIL_H

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wksp/wksp.h>

/* The target workspace, made once per process (anonymous, private). */
static inline wksp_t *fuzz_target(const char *name, uint64_t part_max, uint64_t data_max) {
  static wksp_t *w;
  if (!w) {
    uint64_t fp = wksp_footprint(part_max, data_max);
    void *mem = aligned_alloc(4096, (fp + 4095) & ~4095ull);
    if (!mem || wksp_new(mem, name, 1, part_max, data_max, &w)) abort();
    signal(SIGPIPE, SIG_IGN);
    struct stat st;
    if (!stat("/dev/shm", &st) && S_ISDIR(st.st_mode)) setenv("TMPDIR", "/dev/shm", 0);
  }
  return w;
}

static inline void fuzz_pwrite_all(int fd, const uint8_t *p, size_t n, off_t at) {
  size_t done = 0;
  while (done < n) {
    ssize_t k = pwrite(fd, p + done, n - done, at + (off_t)done);
    if (k <= 0) abort();
    done += (size_t)k;
  }
}

/* The process's memory file, refilled with prefix[0..prefix_sz) then
 * data[0..size) and positioned at offset 0: a seekable regular-file input for
 * the file paths.  The fd stays owned by this function (do not close it);
 * the next call replaces the contents. */
static inline int fuzz_mem_fd(const uint8_t *prefix, size_t prefix_sz, const uint8_t *data,
                              size_t size) {
  static int fd = -1;
  if (fd < 0 && (fd = memfd_create("fuzz-input", MFD_CLOEXEC)) < 0) abort();
  if (ftruncate(fd, 0)) abort();
  fuzz_pwrite_all(fd, prefix, prefix_sz, 0);
  fuzz_pwrite_all(fd, data, size, (off_t)prefix_sz);
  if (lseek(fd, 0, SEEK_SET)) abort();
  return fd;
}

/* An fd on /dev/null, opened once (do not close it). */
static inline int fuzz_null_fd(void) {
  static int fd = -1;
  if (fd < 0 && (fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) abort();
  return fd;
}

/* A few bits that vary with the input (its size and up to 32 sampled
 * bytes), for choices such as the thread count that must reach every
 * value without costing a pass over the whole input. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t size) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ size;
  size_t step = size / 32 + 1;
  for (size_t i = 0; i < size; i += step) h = (h ^ data[i]) * 0x100000001b3ull;
  return h ^ h >> 29;
}

#endif
