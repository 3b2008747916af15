/* Complete reads and writes: the loops that continue short transfers and
 * retry EINTR, written once for the whole library. */
#ifndef WKSP_UTIL_IO_H
#define WKSP_UTIL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Reads exactly sz bytes from fd.  Returns the bytes read (< sz only at end
 * of file) or -1 with errno. */
long wksp_private_read_full(int fd, void *buf, size_t sz);
/* The same with pread(2) at file offset off (the fd's offset is unchanged). */
long wksp_private_pread_full(int fd, void *buf, size_t sz, uint64_t off);
/* Writes all sz bytes.  Returns 0, or -1 with errno. */
int wksp_private_write_full(int fd, const void *buf, size_t sz);
/* Writes all sz bytes with pwrite(2) at file offset off.  Returns 0, or -1
 * with errno. */
int wksp_private_pwrite_full(int fd, const void *buf, size_t sz, uint64_t off);
/* Copies sz bytes of file `in` from offset off to fd `out` at its file
 * position, inside the kernel (sendfile(2): no user mapping is touched).
 * *done gets the bytes copied.  Returns 0, or the errno of the sendfile
 * that failed (EIO when `in` ends early); with *done == 0 and EINVAL,
 * ENOSYS, EOPNOTSUPP or EXDEV the files cannot be copied this way
 * (wksp_private_sendfile_unsupported) and nothing was written. */
int wksp_private_sendfile_all(int out, int in, uint64_t off, size_t sz, size_t *done);
int wksp_private_sendfile_unsupported(int e);
/* Writes every byte of iov[0..cnt) (cnt <= IOV_MAX); modifies iov.  Returns
 * 0, or the errno of the writev that failed. */
int wksp_private_writev_all(int fd, struct iovec *iov, int cnt);

#endif
