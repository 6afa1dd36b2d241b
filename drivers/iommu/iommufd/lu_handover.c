// SPDX-License-Identifier: GPL-2.0
/*
 * What iommufd hands over of a preserved HWPT, and takes back after the
 * live update.
 *
 * The IOMMU driver hands over the translation itself (page tables, the
 * devices in them). What iommufd adds, in the "iommufd" subtree of the
 * handover, is what the domain is made of: for each preserved HWPT, by
 * token, the areas of its IOAS, each a guestmemfs range named by inode
 * number, generation and file offset:
 *
 *   / { compatible = "iommufd-lu-v1";
 *       hwpt@<token> { token = <u64>;
 *                      areas = <u64 iova, length, prot, ino, generation,
 *                               offset> * n; }; }
 *
 * At boot, before guestmemfs can be mounted, the next kernel pins each
 * range again, so that no file shrinks or goes while a device may still
 * reach its memory, checks that the domain the IOMMU driver inherited
 * translates each range to that memory, and keeps the lot as a restored
 * domain (lu.c) for the VMM to take over. The check against a new HWPT
 * at replace (iommufd_lu_check_replace()) relies on these areas.
 */

#include <linux/guestmemfs.h>
#include <linux/iommu.h>
#include <linux/kexec_handover.h>
#include <linux/kmemleak.h>
#include <linux/libfdt.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/unaligned.h>

#include "io_pagetable.h"
#include "iommufd_private.h"

#define IOMMUFD_LU_NAME		"iommufd"
#define IOMMUFD_LU_COMPATIBLE	"iommufd-lu-v1"

/* An area as handed over, native-endian */
struct lu_fdt_area {
	u64 iova;
	u64 length;
	u64 prot;
	u64 ino;
	u64 generation;
	u64 offset;
};

/* Per HWPT and per area, well over what each takes in the blob */
#define LU_FDT_HWPT_SIZE	128
#define LU_FDT_ROOT_SIZE	256

/**
 * iommufd_lu_handover_size - bytes the handover's blob may need
 * @marked: the marked HWPTs, by token, their IOAS frozen
 *
 * Return: the size, page aligned.
 */
size_t iommufd_lu_handover_size(struct xarray *marked)
{
	struct iommufd_hwpt_paging *hwpt_paging;
	size_t size = LU_FDT_ROOT_SIZE;
	unsigned long token;

	xa_for_each(marked, token, hwpt_paging) {
		struct io_pagetable *iopt = &hwpt_paging->ioas->iopt;
		struct iopt_area *area;

		size += LU_FDT_HWPT_SIZE;
		down_read(&iopt->iova_rwsem);
		for (area = iopt_area_iter_first(iopt, 0, ULONG_MAX); area;
		     area = iopt_area_iter_next(area, 0, ULONG_MAX))
			size += sizeof(struct lu_fdt_area);
		up_read(&iopt->iova_rwsem);
	}
	return PAGE_ALIGN(size);
}

static int lu_fdt_add_hwpt(void *fdt, u64 token,
			   struct iommufd_hwpt_paging *hwpt_paging)
{
	struct io_pagetable *iopt = &hwpt_paging->ioas->iopt;
	struct lu_fdt_area *areas;
	struct iopt_area *area;
	unsigned int n = 0;
	char name[32];
	int err;

	down_read(&iopt->iova_rwsem);
	for (area = iopt_area_iter_first(iopt, 0, ULONG_MAX); area;
	     area = iopt_area_iter_next(area, 0, ULONG_MAX))
		n++;
	areas = kvcalloc(n ?: 1, sizeof(*areas), GFP_KERNEL);
	if (!areas) {
		up_read(&iopt->iova_rwsem);
		return -ENOMEM;
	}
	n = 0;
	/* Marked, so every area is a whole-page guestmemfs one (lu.c) */
	for (area = iopt_area_iter_first(iopt, 0, ULONG_MAX); area;
	     area = iopt_area_iter_next(area, 0, ULONG_MAX), n++) {
		const struct guestmemfs_pin *pin = area->pages->gmfs_pin;

		areas[n].iova = iopt_area_iova(area);
		areas[n].length = iopt_area_length(area);
		areas[n].prot = area->iommu_prot & (IOMMU_READ | IOMMU_WRITE);
		areas[n].ino = pin->ino;
		areas[n].generation = pin->generation;
		areas[n].offset = pin->start +
				  ((u64)iopt_area_index(area) << PAGE_SHIFT);
	}
	up_read(&iopt->iova_rwsem);

	snprintf(name, sizeof(name), "hwpt@%llx", token);
	err = fdt_begin_node(fdt, name) ?:
	      fdt_property(fdt, "token", &token, sizeof(token)) ?:
	      fdt_property(fdt, "areas", areas, n * sizeof(*areas)) ?:
	      fdt_end_node(fdt);
	kvfree(areas);
	/* libfdt's codes are not errnos: the blob is too small */
	return err ? -ENOSPC : 0;
}

/**
 * iommufd_lu_handover_write - describe the preserved HWPTs for the next kernel
 * @ser: the handover being finalized
 * @marked: the marked HWPTs, by token, each handed over to its IOMMU driver
 * @folio: returns the blob, preserved, for iommufd_lu_handover_drop()
 *
 * Return: 0, -ENOSPC if the blob overflows, -ENOMEM, or an error of KHO.
 */
int iommufd_lu_handover_write(struct kho_serialization *ser,
			      struct xarray *marked, struct folio **folio)
{
	struct iommufd_hwpt_paging *hwpt_paging;
	size_t size = iommufd_lu_handover_size(marked);
	unsigned long token;
	struct folio *f;
	void *fdt;
	int err;

	if (xa_empty(marked))
		return 0;
	f = folio_alloc(GFP_KERNEL | __GFP_ZERO, get_order(size));
	if (!f)
		return -ENOMEM;
	fdt = folio_address(f);
	err = fdt_create(fdt, folio_size(f)) ?:
	      fdt_finish_reservemap(fdt) ?:
	      fdt_begin_node(fdt, "") ?:
	      fdt_property_string(fdt, "compatible", IOMMUFD_LU_COMPATIBLE);
	if (err)
		err = -ENOSPC;
	xa_for_each(marked, token, hwpt_paging) {
		if (err)
			break;
		err = lu_fdt_add_hwpt(fdt, token, hwpt_paging);
	}
	if (!err && (fdt_end_node(fdt) || fdt_finish(fdt)))
		err = -ENOSPC;
	if (err)
		goto out_put;
	err = kho_preserve_folio(f);
	if (err)
		goto out_put;
	err = kho_add_subtree(ser, IOMMUFD_LU_NAME, fdt);
	if (err) {
		kho_unpreserve_folio(f);
		goto out_put;
	}
	*folio = f;
	return 0;
out_put:
	folio_put(f);
	return err;
}

/**
 * iommufd_lu_handover_drop - undo iommufd_lu_handover_write() at abort
 * @folio: the blob it returned, or NULL
 */
void iommufd_lu_handover_drop(struct folio *folio)
{
	if (!folio)
		return;
	WARN_ON_ONCE(kho_unpreserve_folio(folio));
	folio_put(folio);
}

/*
 * Pin an area's memory again and check that @domain translates the area
 * to it, first and last page of each run. A domain that does not is not
 * the one the areas describe.
 */
static int lu_restore_area(struct iommufd_lu_area *la,
			   const struct lu_fdt_area *a,
			   struct iommu_domain *domain, u64 token)
{
	unsigned int i;
	u64 last;

	if (!a->length || !PAGE_ALIGNED(a->iova) ||
	    !PAGE_ALIGNED(a->length) || !PAGE_ALIGNED(a->offset) ||
	    check_add_overflow(a->iova, a->length - 1, &last) ||
	    last != (unsigned long)last || a->ino > U32_MAX ||
	    a->generation > U32_MAX || !a->prot ||
	    (a->prot & ~(u64)(IOMMU_READ | IOMMU_WRITE)))
		return -EINVAL;
	la->pin = guestmemfs_pin_ino(a->ino, a->generation, a->offset,
				     a->length, token);
	if (IS_ERR(la->pin)) {
		int err = PTR_ERR(la->pin);

		la->pin = NULL;
		return err;
	}
	la->iova = a->iova;
	la->length = a->length;
	la->prot = a->prot;
	for (i = 0; i < la->pin->nr_runs; i++) {
		const struct guestmemfs_run *run = &la->pin->runs[i];
		unsigned long iova = la->iova + run->offset;

		if (iommu_iova_to_phys(domain, iova) != run->phys ||
		    iommu_iova_to_phys(domain, iova + run->len - PAGE_SIZE) !=
			    run->phys + run->len - PAGE_SIZE)
			return -EFAULT;
	}
	return 0;
}

/*
 * Move the groups of an inherited domain nobody can take over out of it,
 * and free it (its tables with it).
 *
 * Return: 0, or -EBUSY if a group is left in the domain: it is kept.
 */
static int lu_block_domain(struct iommu_domain *domain, u64 token, int why)
{
	int left = iommu_lu_block_inherited(domain);

	if (left)
		return -EBUSY;
	iommu_domain_free(domain);
	pr_err("iommufd: live update: HWPT %#llx cannot be taken over (%d): the DMA of its devices is blocked\n",
	       token, why);
	return 0;
}

static int lu_restore_hwpt(const void *fdt, int node)
{
	ktime_t t0 = ktime_get();
	const struct lu_fdt_area *areas;
	struct iommufd_lu_domain *lu;
	struct iommu_domain *domain;
	unsigned int nr_groups, n, i, j;
	const char *name;
	char want[32];
	const void *p;
	u64 token;
	int len, err;

	p = fdt_getprop(fdt, node, "token", &len);
	if (!p || len != sizeof(token))
		return -EINVAL;
	token = get_unaligned((const u64 *)p);
	name = fdt_get_name(fdt, node, NULL);
	snprintf(want, sizeof(want), "hwpt@%llx", token);
	areas = fdt_getprop(fdt, node, "areas", &len);
	if (!name || strcmp(name, want) || !areas || len % sizeof(*areas)) {
		pr_err("iommufd: live update: the handover's node %s is damaged\n",
		       name ?: "?");
		return -EINVAL;
	}
	n = len / sizeof(*areas);

	domain = iommu_lu_claim_inherited(token, &nr_groups);
	if (!domain) {
		pr_err("iommufd: live update: no device kept the translation of the HWPT handed over as %#llx\n",
		       token);
		return -ENOENT;
	}
	lu = iommufd_lu_domain_alloc(n);
	if (!lu) {
		err = -ENOMEM;
		if (!lu_block_domain(domain, token, err))
			return err;
		goto out_err;
	}
	lu->token = token;
	lu->domain = domain;
	atomic_set(&lu->nr_groups, nr_groups);
	/* Every area that can be is pinned, even after one that cannot */
	err = 0;
	for (i = 0; i < n; i++) {
		struct lu_fdt_area a;
		int rc;

		/* The blob's properties are only 32-bit aligned */
		memcpy(&a, &areas[i], sizeof(a));
		rc = lu_restore_area(&lu->areas[i], &a, domain, token);
		err = err ?: rc;
	}
	if (err)
		goto out_broken;
	/* An IOAS has no overlapping areas */
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (lu->areas[i].iova <= lu->areas[j].iova +
						  lu->areas[j].length - 1 &&
			    lu->areas[j].iova <= lu->areas[i].iova +
						  lu->areas[i].length - 1) {
				err = -EINVAL;
				goto out_broken;
			}
	err = iommufd_lu_add_restored(lu);
	if (err)
		goto out_broken_unadded;
	pr_info("iommufd: live update: HWPT %#llx restored: %u area(s), %u group(s) in %lld us\n",
		token, n, nr_groups, ktime_us_delta(ktime_get(), t0));
	return 0;

out_broken:
	/*
	 * Nobody can take the devices over: their DMA stops, the domain and
	 * its tables go, and so do the pins. If some device cannot be moved
	 * out, it goes on reaching the domain's memory: what is pinned stays
	 * pinned, and the record is kept, unusable.
	 */
	if (!lu_block_domain(domain, token, err)) {
		lu->domain = NULL;
		iommufd_lu_domain_discard(lu);
		return err;
	}
	lu->broken = true;
	if (!iommufd_lu_add_restored(lu))
		goto out_err;
out_broken_unadded:
	/* Not even kept (a token twice, no memory): the pins stay, on purpose */
	kmemleak_not_leak(lu);
out_err:
	for (i = 0, j = 0; lu && i < n; i++)
		j += !!lu->areas[i].pin;
	pr_err("iommufd: live update: HWPT %#llx not restored (%d): its devices cannot be taken over; %u of its %u area(s) stay pinned\n",
	       token, err, j, n);
	return err;
}

/*
 * Domains an IOMMU driver inherited under a token no record describes (the
 * handover's blob damaged or gone): nobody knows what they map.
 */
static void lu_block_unknown(void)
{
	struct iommu_domain *domain;
	unsigned int nr_groups;

	while ((domain = iommu_lu_claim_any_inherited(&nr_groups))) {
		u64 token = domain->lu_token;

		if (lu_block_domain(domain, token, -ENOENT))
			pr_err("iommufd: live update: no record of the HWPT handed over as %#llx, and its devices cannot be moved out of it: their DMA goes on\n",
			       token);
	}
}

/**
 * iommufd_lu_handover_restore - take back the HWPTs the last kernel handed over
 *
 * Each becomes a restored domain, with its ranges pinned again, if its
 * IOMMU driver took its translation over. One error line for each that
 * cannot be; the devices of such a domain, and of every inherited domain
 * no record describes, are moved out of it (their DMA stops) and the
 * domain is freed.
 */
void iommufd_lu_handover_restore(void)
{
	struct folio *folio;
	phys_addr_t phys;
	const void *fdt;
	int node;

	if (kho_retrieve_subtree(IOMMUFD_LU_NAME, &phys))
		goto out;
	folio = kho_restore_folio(phys);
	if (!folio) {
		pr_err("iommufd: live update: the handover's blob is not preserved memory\n");
		goto out;
	}
	fdt = folio_address(folio);
	if (fdt_check_header(fdt) || fdt_totalsize(fdt) > folio_size(folio) ||
	    fdt_node_check_compatible(fdt, 0, IOMMUFD_LU_COMPATIBLE)) {
		pr_err("iommufd: live update: the handover's blob is damaged or of another version\n");
		goto out_put;
	}
	fdt_for_each_subnode(node, fdt, 0)
		lu_restore_hwpt(fdt, node);
out_put:
	folio_put(folio);
out:
	lu_block_unknown();
}
