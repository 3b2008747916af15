#include "io.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <unistd.h>

long wksp_private_read_full(int fd, void *buf, size_t sz) {
  size_t got = 0;
  while (got < sz) {
    ssize_t n = read(fd, (uint8_t *)buf + got, sz - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (!n) break;
    got += (size_t)n;
  }
  return (long)got;
}

long wksp_private_pread_full(int fd, void *buf, size_t sz, uint64_t off) {
  size_t got = 0;
  while (got < sz) {
    ssize_t n = pread(fd, (uint8_t *)buf + got, sz - got, (off_t)(off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (!n) break;
    got += (size_t)n;
  }
  return (long)got;
}

int wksp_private_write_full(int fd, const void *buf, size_t sz) {
  size_t done = 0;
  while (done < sz) {
    ssize_t n = write(fd, (const uint8_t *)buf + done, sz - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

int wksp_private_pwrite_full(int fd, const void *buf, size_t sz, uint64_t off) {
  size_t done = 0;
  while (done < sz) {
    ssize_t n = pwrite(fd, (const uint8_t *)buf + done, sz - done, (off_t)(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

int wksp_private_sendfile_all(int out, int in, uint64_t off, size_t sz, size_t *done) {
  *done = 0;
  while (*done < sz) {
    off_t at = (off_t)(off + *done);
    ssize_t n = sendfile(out, in, &at, sz - *done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (!n) return EIO;
    *done += (size_t)n;
  }
  return 0;
}

int wksp_private_sendfile_unsupported(int e) {
  return e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == EXDEV;
}

int wksp_private_writev_all(int fd, struct iovec *iov, int cnt) {
  while (cnt > 0) {
    ssize_t n = writev(fd, iov, cnt);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    while (cnt > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++;
      cnt--;
    }
    if (cnt > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
  return 0;
}
