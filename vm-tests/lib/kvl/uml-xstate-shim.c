/*
 * LD_PRELOAD shim for user-mode-linux 6.1 (Debian bookworm) on hosts whose XSAVE area is larger than UML's
 * fixed 2696-byte buffer (CPUs with AMX: the host's area is about 11 KiB).
 *
 * UML restores a guest process's FPU state with ptrace(PTRACE_SETREGSET, NT_X86_XSTATE) using its own buffer
 * size, and the host kernel accepts only a buffer of exactly its full user XSAVE size (xstateregs_set returns
 * EFAULT otherwise), so every guest process dies at its first exec ("ptrace set fp regs failed, errno = 14").
 * Later UML kernels size the buffer from the host; this shim does the same from outside: it pads UML's buffer
 * with zeros to the host size. Reading (GETREGSET) is already fine: the kernel truncates to the caller's size.
 * The padding is the init state of the components past UML's buffer (AMX tiles), which a UML guest process can
 * never have enabled (its XSTATE_BV, copied from UML's buffer, does not name them).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

/* UML runs its kernel on one host thread with small stacks: a static buffer, never a large stack array. */
static unsigned char padded[1 << 16];
static size_t host_size;

long ptrace(enum __ptrace_request request, ...)
{
	static ptrace_fn real;
	va_list ap;
	pid_t pid;
	void *addr, *data;

	va_start(ap, request);
	pid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);
	if (!real)
		real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");

	if (request == PTRACE_SETREGSET && (long)addr == NT_X86_XSTATE && data) {
		struct iovec *iov = data;
		if (!host_size) {
			/* The kernel reports its full size when asked to fill a larger buffer. */
			struct iovec probe = { padded, sizeof(padded) };
			if (real(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &probe) == 0)
				host_size = probe.iov_len;
		}
		if (host_size > iov->iov_len && host_size <= sizeof(padded)) {
			struct iovec big = { padded, host_size };
			memset(padded, 0, host_size);
			memcpy(padded, iov->iov_base, iov->iov_len);
			return real(request, pid, addr, &big);
		}
	}
	return real(request, pid, addr, data);
}
