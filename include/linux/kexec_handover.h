/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef LINUX_KEXEC_HANDOVER_H
#define LINUX_KEXEC_HANDOVER_H

#include <linux/errno.h>
#include <linux/types.h>

struct folio;
struct notifier_block;
struct kho_serialization;
struct range;

/**
 * enum kho_event - events of the KHO notifier chain
 * @KEXEC_KHO_FINALIZE: the handover state is being built: preserve what
 *	must survive and publish subtrees with kho_add_subtree(), which the
 *	notifier data is for.
 * @KEXEC_KHO_ABORT: the handover was abandoned: undo what FINALIZE did.
 */
enum kho_event {
	KEXEC_KHO_FINALIZE = 0,
	KEXEC_KHO_ABORT = 1,
};

/**
 * struct kho_scratch - a scratch area, as handed to the next kernel
 * @addr: physical address, aligned to a pageblock
 * @size: size in bytes, a multiple of a pageblock
 *
 * Part of the handover ABI: an array of these is passed to the next kernel,
 * which allocates only from these areas until it has reserved all the
 * preserved memory.
 */
struct kho_scratch {
	__u64 addr;
	__u64 size;
};

#ifdef CONFIG_KEXEC_HANDOVER
bool kho_is_enabled(void);
bool kho_kexec_hands_over(void);

int kho_preserve_folio(struct folio *folio);
int kho_preserve_phys(phys_addr_t phys, size_t size);
int kho_unpreserve_folio(struct folio *folio);
int kho_unpreserve_phys(phys_addr_t phys, size_t size);
int kho_preserve_unmapped(phys_addr_t phys, phys_addr_t size);
int kho_unpreserve_unmapped(phys_addr_t phys, phys_addr_t size);
int kho_claim_unmapped(phys_addr_t phys, phys_addr_t size);

int kho_add_subtree(struct kho_serialization *ser, const char *name,
		    void *fdt);

struct folio *kho_restore_folio(phys_addr_t phys);
int kho_restore_phys(phys_addr_t phys, size_t size);
int kho_retrieve_subtree(const char *name, phys_addr_t *phys);
int kho_in_block_order(phys_addr_t phys);

int register_kho_notifier(struct notifier_block *nb);
int unregister_kho_notifier(struct notifier_block *nb);

void kho_memory_init(void);
bool kho_runs_on_scratch(void);
#if IS_ENABLED(CONFIG_TEST_KEXEC_HANDOVER)
/* Only for lib/test_kho.c */
int kho_test_corrupt(const char *how);
#endif
int kho_populate(phys_addr_t fdt_phys, u64 fdt_len,
		 phys_addr_t scratch_phys, u64 scratch_len);
const struct range *kho_in_unmapped(unsigned int *nr);
#else
static inline bool kho_is_enabled(void)
{
	return false;
}

static inline bool kho_kexec_hands_over(void)
{
	return false;
}

static inline bool kho_runs_on_scratch(void)
{
	return false;
}

static inline int kho_preserve_folio(struct folio *folio)
{
	return -EOPNOTSUPP;
}

static inline int kho_preserve_phys(phys_addr_t phys, size_t size)
{
	return -EOPNOTSUPP;
}

static inline int kho_unpreserve_folio(struct folio *folio)
{
	return -EOPNOTSUPP;
}

static inline int kho_unpreserve_phys(phys_addr_t phys, size_t size)
{
	return -EOPNOTSUPP;
}

static inline int kho_preserve_unmapped(phys_addr_t phys, phys_addr_t size)
{
	return -EOPNOTSUPP;
}

static inline int kho_unpreserve_unmapped(phys_addr_t phys,
					  phys_addr_t size)
{
	return -EOPNOTSUPP;
}

static inline int kho_claim_unmapped(phys_addr_t phys, phys_addr_t size)
{
	return -ENOENT;
}

static inline int kho_add_subtree(struct kho_serialization *ser,
				  const char *name, void *fdt)
{
	return -EOPNOTSUPP;
}

static inline struct folio *kho_restore_folio(phys_addr_t phys)
{
	return NULL;
}

static inline int kho_restore_phys(phys_addr_t phys, size_t size)
{
	return -EOPNOTSUPP;
}

static inline int kho_retrieve_subtree(const char *name, phys_addr_t *phys)
{
	return -EOPNOTSUPP;
}

static inline int register_kho_notifier(struct notifier_block *nb)
{
	return -EOPNOTSUPP;
}

static inline int unregister_kho_notifier(struct notifier_block *nb)
{
	return -EOPNOTSUPP;
}

static inline void kho_memory_init(void) { }

static inline int kho_populate(phys_addr_t fdt_phys, u64 fdt_len,
			       phys_addr_t scratch_phys, u64 scratch_len)
{
	return -EOPNOTSUPP;
}

static inline const struct range *kho_in_unmapped(unsigned int *nr)
{
	*nr = 0;
	return NULL;
}

static inline int kho_in_block_order(phys_addr_t phys)
{
	return -ENOENT;
}
#endif /* CONFIG_KEXEC_HANDOVER */

#endif /* LINUX_KEXEC_HANDOVER_H */
