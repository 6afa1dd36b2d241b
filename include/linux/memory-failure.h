/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_MEMORY_FAILURE_H
#define _LINUX_MEMORY_FAILURE_H

#include <linux/list.h>
#include <linux/types.h>

struct address_space;

/**
 * struct pfn_failure_handler - the owner of memory without struct pages
 * @list: in the list of handlers, under memory_failure()'s lock
 * @pfn: first page frame it owns
 * @nr_pfns: how many
 * @handle: called by memory_failure() for a failed page frame of the
 *	range, with the flags memory_failure() was given. Returns 0 if the
 *	failure is handled (the page is out of use, its users told);
 *	-EHWPOISON if the page had failed already and, for an action
 *	required error, the current task was signalled; another error, not
 *	-ENXIO, otherwise.
 *	Runs in process context; memory_failure() calls are serialised.
 */
struct pfn_failure_handler {
	struct list_head list;
	unsigned long pfn;
	unsigned long nr_pfns;
	int (*handle)(struct pfn_failure_handler *h, unsigned long pfn,
		      int flags);
};

#ifdef CONFIG_MEMORY_FAILURE
int register_pfn_failure_handler(struct pfn_failure_handler *h);
void unregister_pfn_failure_handler(struct pfn_failure_handler *h);
int mf_pfnmap_kill_procs(struct address_space *mapping, pgoff_t pgoff,
			 unsigned long pfn, int flags);
#else
static inline int register_pfn_failure_handler(struct pfn_failure_handler *h)
{
	return 0;
}

static inline void unregister_pfn_failure_handler(struct pfn_failure_handler *h)
{
}

static inline int mf_pfnmap_kill_procs(struct address_space *mapping,
				       pgoff_t pgoff, unsigned long pfn,
				       int flags)
{
	return 0;
}
#endif

#endif /* _LINUX_MEMORY_FAILURE_H */
