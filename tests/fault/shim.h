/* What the LD_PRELOAD fault shims (fault_shim.c, crash_shim.c) share. */
#ifndef CAIRN_TESTS_FAULT_SHIM_H
#define CAIRN_TESTS_FAULT_SHIM_H

#include <dlfcn.h>
#include <stdarg.h>

/* The next definition of a libc function (the one the shim wraps). */
#define REAL(name, type) ((type)dlsym(RTLD_NEXT, #name))

/* In a variadic wrapper: take the six argument words a system call may
 * have (syscall(2) passes them all as long). */
#define SHIM_SYSCALL_ARGS(last)                                                                    \
    va_list ap_;                                                                                   \
    va_start(ap_, last);                                                                           \
    long a1 = va_arg(ap_, long), a2 = va_arg(ap_, long), a3 = va_arg(ap_, long);                   \
    long a4 = va_arg(ap_, long), a5 = va_arg(ap_, long), a6 = va_arg(ap_, long);                   \
    va_end(ap_)

/* In open(2)'s variadic wrappers: the mode, present only with O_CREAT or
 * O_TMPFILE. */
#define SHIM_OPEN_MODE(flags, mode)                                                                \
    mode_t mode = 0;                                                                               \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                                                         \
        va_list ap_;                                                                               \
        va_start(ap_, flags);                                                                      \
        mode = va_arg(ap_, mode_t);                                                                \
        va_end(ap_);                                                                               \
    }

#endif
