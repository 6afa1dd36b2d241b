/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _LINUX_GUESTMEMFS_H
#define _LINUX_GUESTMEMFS_H

#ifdef CONFIG_GUESTMEMFS_FS
void guestmemfs_reserve_carveout(void);
#else
static inline void guestmemfs_reserve_carveout(void) { }
#endif

#endif /* _LINUX_GUESTMEMFS_H */
