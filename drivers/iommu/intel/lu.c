// SPDX-License-Identifier: GPL-2.0
/*
 * Live update: keep the DMA translation of devices assigned to guests
 * through a kexec with handover (KHO), and take it back in the next kernel.
 *
 * The owner of a paging domain (iommufd, for a HWPT the VMM marked) asks
 * for the domain to be handed over while the handover is finalized
 * (iommu_domain_lu_preserve()). This preserves the domain's page-table
 * pages in place and records the context entry of each device attached to
 * it. The KHO notifier then preserves the root table and the context tables
 * those entries live in and describes them in the "intel-iommu" subtree:
 *
 *   / { compatible = "intel-iommu-lu-v1";
 *       dmar@<register base> { root-table = <u64>;
 *           sid@<source id> { domain-id = <u32>; page-table = <u64>;
 *                             address-width = <u32>; token = <u64>; }; }; }
 *
 * At the kexec, a unit with such devices keeps translation on: every other
 * context entry is cleared, and the devices keep bus mastering.
 *
 * The next kernel finds translation on. For a unit the handover describes,
 * it copies each described context entry that still matches into new
 * tables and takes the device's page tables back from KHO (which checks
 * that each table page was preserved), as a kdump kernel copies the
 * tables of the crashed one: the device goes on translating through them,
 * its attach deferred, until it is attached to a domain of this kernel.
 * A device whose entry does not match, or whose tables are not all
 * preserved memory, is left with no context entry: its DMA faults. So is
 * every device of a unit found with translation on and no usable
 * handover: its DMA is blocked, never let through untranslated. Both are
 * checked, and blocked, before memory goes to the page allocator
 * (intel_iommu_lu_early_unit()), as far as can be without taking the
 * tables back; adopting them at intel_iommu_init() checks the rest.
 *
 * Legacy (not scalable) mode only; no ATS, PASID or PRI; one request ID
 * per device (no DMA aliases).
 */

#define pr_fmt(fmt) "DMAR: live update: " fmt

#include <linux/cacheflush.h>
#include <linux/crash_dump.h>
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/kexec_handover.h>
#include <linux/libfdt.h>
#include <linux/notifier.h>
#include <linux/pci.h>
#include <linux/slab.h>

#include "iommu.h"

#define INTEL_LU_NAME		"intel-iommu"
#define INTEL_LU_COMPATIBLE	"intel-iommu-lu-v1"

/* A device whose translation is handed over (old kernel) */
struct intel_lu_dev {
	struct list_head link;
	struct dmar_domain *domain;
	struct intel_iommu *iommu;
	struct pci_dev *pdev;
	u64 token;
	u64 page_table;		/* address root of its context entry */
	u16 sid;
	u16 did;
	u8 aw;			/* address width of its context entry */
};

/*
 * The page-table pages of a domain handed over, preserved with KHO. Kept
 * after the domain is freed while the handover is finalized (KHO cannot
 * take pages back then), until abort.
 */
struct intel_lu_domain {
	struct list_head link;
	struct dmar_domain *domain;	/* NULL once freed */
	phys_addr_t *pages;
	unsigned int nr_pages;
	unsigned int max_pages;
};

static struct {
	struct mutex lock;	/* everything below */
	struct list_head devs;
	struct list_head domains;
	/* The handover, from finalize to abort */
	struct folio *fdt;
	phys_addr_t *tables;	/* root and context tables preserved */
	unsigned int nr_tables;
} lu_out = {
	.lock = __MUTEX_INITIALIZER(lu_out.lock),
	.devs = LIST_HEAD_INIT(lu_out.devs),
	.domains = LIST_HEAD_INIT(lu_out.domains),
};

/*
 * Calls @fn on each page-table page of the table at @phys, of @level, and
 * below it, parents first, and @leaf (if not NULL) on each page or
 * superpage they map. @fn sees a page before it is read: in the next
 * kernel it is what checks that the page is preserved memory.
 */
static int lu_walk_tables(phys_addr_t phys, int level,
			  int (*fn)(phys_addr_t phys),
			  int (*leaf)(phys_addr_t phys, u64 size))
{
	struct dma_pte *table;
	int i, err;

	err = fn(phys);
	if (err)
		return err;
	table = phys_to_virt(phys);
	for (i = 0; i < VTD_PAGE_SIZE / sizeof(*table); i++) {
		struct dma_pte *pte = &table[i];

		if (!dma_pte_present(pte))
			continue;
		if (level == 1 || dma_pte_superpage(pte)) {
			err = leaf ? leaf(dma_pte_addr(pte),
					  VTD_PAGE_SIZE << (9 * (level - 1))) : 0;
		} else {
			err = lu_walk_tables(dma_pte_addr(pte), level - 1, fn,
					     leaf);
		}
		if (err)
			return err;
	}
	return 0;
}

/* The domain whose tables are being walked, under lu_out.lock */
static struct intel_lu_domain *lu_walked;

static int lu_count_table(phys_addr_t phys)
{
	lu_walked->max_pages++;
	return 0;
}

static int lu_collect_table(phys_addr_t phys)
{
	if (lu_walked->nr_pages == lu_walked->max_pages)
		return -EBUSY;	/* the tables changed under us */
	lu_walked->pages[lu_walked->nr_pages++] = phys;
	return 0;
}

/*
 * Take the pages of @ld back from KHO and forget them. Once the handover
 * is finalized KHO refuses (-EBUSY): the rest stay preserved, recorded,
 * until abort. Return: true if all were taken back and @ld is freed.
 */
static bool lu_domain_release(struct intel_lu_domain *ld)
{
	lockdep_assert_held(&lu_out.lock);
	while (ld->nr_pages) {
		if (kho_unpreserve_phys(ld->pages[ld->nr_pages - 1],
					VTD_PAGE_SIZE))
			return false;
		ld->nr_pages--;
	}
	list_del(&ld->link);
	kvfree(ld->pages);
	kfree(ld);
	return true;
}

static struct intel_lu_domain *lu_find_domain(struct dmar_domain *domain)
{
	struct intel_lu_domain *ld;

	lockdep_assert_held(&lu_out.lock);
	list_for_each_entry(ld, &lu_out.domains, link)
		if (ld->domain == domain)
			return ld;
	return NULL;
}

/* Preserve the page-table pages of @domain, each recorded */
static int lu_preserve_tables(struct dmar_domain *domain)
{
	int level = agaw_to_level(domain->agaw);
	phys_addr_t pgd = virt_to_phys(domain->pgd);
	struct intel_lu_domain *ld;
	unsigned int i;
	int err;

	lockdep_assert_held(&lu_out.lock);
	ld = kzalloc(sizeof(*ld), GFP_KERNEL);
	if (!ld)
		return -ENOMEM;
	ld->domain = domain;
	list_add_tail(&ld->link, &lu_out.domains);

	/* The IOAS cannot change while its HWPT is handed over */
	lu_walked = ld;
	lu_walk_tables(pgd, level, lu_count_table, NULL);
	ld->pages = kvcalloc(ld->max_pages, sizeof(*ld->pages), GFP_KERNEL);
	err = ld->pages ? lu_walk_tables(pgd, level, lu_collect_table, NULL) :
			  -ENOMEM;
	lu_walked = NULL;
	if (err)
		goto out_free;

	for (i = 0; i < ld->nr_pages; i++) {
		err = kho_preserve_phys(ld->pages[i], VTD_PAGE_SIZE);
		if (err)
			break;
	}
	if (!err)
		return 0;
	ld->nr_pages = i;
out_free:
	WARN_ON_ONCE(!lu_domain_release(ld));
	return err;
}

static int lu_count_alias(struct pci_dev *pdev, u16 alias, void *data)
{
	(*(unsigned int *)data)++;
	return 0;
}

/* Can the translation of the device behind @info be handed over? */
static bool lu_dev_supported(struct device_domain_info *info)
{
	unsigned int aliases = 0;

	if (!info->dev || !dev_is_pci(info->dev) ||
	    sm_supported(info->iommu) || info->ats_supported ||
	    info->pasid_enabled || info->pri_enabled)
		return false;
	pci_for_each_dma_alias(to_pci_dev(info->dev), lu_count_alias,
			       &aliases);
	return aliases == 1;
}

static void lu_free_devs(struct dmar_domain *domain)
{
	struct intel_lu_dev *d, *tmp;

	lockdep_assert_held(&lu_out.lock);
	list_for_each_entry_safe(d, tmp, &lu_out.devs, link) {
		if (d->domain != domain)
			continue;
		list_del(&d->link);
		WRITE_ONCE(d->pdev->lu_keep_dma, false);
		pci_dev_put(d->pdev);
		kfree(d);
	}
}

/*
 * Record the context entry of each device attached to @domain. The records
 * are allocated first, the devices are listed under the domain's lock, and
 * their context entries read after it (iommu->lock nests outside it).
 *
 * Return: the number of devices recorded, or an error.
 */
static int lu_record_devs(struct dmar_domain *domain, u64 token)
{
	struct device_domain_info *info;
	struct intel_lu_dev *d, *tmp;
	unsigned int nr = 0, i = 0;
	LIST_HEAD(recs);
	unsigned long flags;
	int err = 0;

	spin_lock_irqsave(&domain->lock, flags);
	list_for_each_entry(info, &domain->devices, link)
		nr++;
	spin_unlock_irqrestore(&domain->lock, flags);
	if (!nr)
		return 0;

	for (i = 0; i < nr; i++) {
		d = kzalloc(sizeof(*d), GFP_KERNEL);
		if (!d) {
			err = -ENOMEM;
			goto out_free;
		}
		list_add_tail(&d->link, &recs);
	}

	d = list_first_entry(&recs, struct intel_lu_dev, link);
	spin_lock_irqsave(&domain->lock, flags);
	list_for_each_entry(info, &domain->devices, link) {
		if (!lu_dev_supported(info)) {
			err = -EOPNOTSUPP;
			break;
		}
		/* A device attached since the count: the caller's race */
		if (list_entry_is_head(d, &recs, link)) {
			err = -EBUSY;
			break;
		}
		/* The next kernel takes a domain back on one unit */
		if (d != list_first_entry(&recs, struct intel_lu_dev, link) &&
		    info->iommu != list_first_entry(&recs, struct intel_lu_dev,
						    link)->iommu) {
			err = -EOPNOTSUPP;
			break;
		}
		d->domain = domain;
		d->iommu = info->iommu;
		d->pdev = pci_dev_get(to_pci_dev(info->dev));
		d->token = token;
		d->sid = PCI_DEVID(info->bus, info->devfn);
		d = list_next_entry(d, link);
	}
	spin_unlock_irqrestore(&domain->lock, flags);
	if (err)
		goto out_free;

	list_for_each_entry(d, &recs, link) {
		struct intel_iommu *iommu = d->iommu;
		struct iommu_domain_info *di;
		struct context_entry *ce;

		if (!d->domain)
			break;
		spin_lock(&iommu->lock);
		di = xa_load(&domain->iommu_array, iommu->seq_id);
		ce = iommu_context_addr(iommu, PCI_BUS_NUM(d->sid),
					d->sid & 0xff, 0);
		if (di && ce && context_present(ce) &&
		    context_domain_id(ce) == di->did) {
			d->page_table = ce->lo & VTD_PAGE_MASK;
			d->aw = ce->hi & 7;
			d->did = context_domain_id(ce);
		} else {
			/* Detached meanwhile, or not translating through it */
			err = -EINVAL;
		}
		spin_unlock(&iommu->lock);
		if (err)
			goto out_free;
	}

	/* Records left over: devices detached since the count */
	nr = 0;
	list_for_each_entry_safe(d, tmp, &recs, link) {
		if (d->domain) {
			nr++;
			continue;
		}
		list_del(&d->link);
		kfree(d);
	}
	mutex_lock(&lu_out.lock);
	list_splice_tail(&recs, &lu_out.devs);
	mutex_unlock(&lu_out.lock);
	return nr;

out_free:
	list_for_each_entry_safe(d, tmp, &recs, link) {
		pci_dev_put(d->pdev);
		kfree(d);
	}
	return err;
}

/**
 * intel_iommu_lu_preserve - iommu_domain_ops::lu_preserve
 * @domain: a second-stage paging domain
 * @token: what the next kernel calls the domain by
 *
 * Return: 0, also when no device is attached (nothing is handed over
 * then); -EOPNOTSUPP for a first-stage, nesting-parent or dirty tracking
 * domain, scalable mode, or a device with ATS, PASID, PRI or DMA aliases;
 * -EINVAL if a device's context entry is not the domain's; -EBUSY for a
 * domain already handed over, a device attached meanwhile, or tables that
 * changed meanwhile; -ENOMEM; or the error of KHO.
 */
int intel_iommu_lu_preserve(struct iommu_domain *domain, u64 token)
{
	struct dmar_domain *dmar_domain = to_dmar_domain(domain);
	ktime_t t0 = ktime_get();
	int err;

	if (dmar_domain->use_first_level || dmar_domain->nested_parent ||
	    dmar_domain->dirty_tracking)
		return -EOPNOTSUPP;
	if (dmar_domain->lu_preserved)
		return -EBUSY;

	err = lu_record_devs(dmar_domain, token);
	/* No device: nothing would find the tables in the next kernel */
	if (err <= 0)
		return err;
	mutex_lock(&lu_out.lock);
	err = lu_preserve_tables(dmar_domain);
	if (err) {
		lu_free_devs(dmar_domain);
	} else {
		dmar_domain->lu_preserved = true;
		/* The cost of a live update, for make bench */
		pr_info("the domain marked %#llx: %u page-table page(s) preserved in %lld us\n",
			token, lu_find_domain(dmar_domain)->nr_pages,
			ktime_us_delta(ktime_get(), t0));
	}
	mutex_unlock(&lu_out.lock);
	return err;
}

/**
 * intel_iommu_lu_unpreserve - iommu_domain_ops::lu_unpreserve
 * @domain: a domain intel_iommu_lu_preserve() succeeded on
 */
void intel_iommu_lu_unpreserve(struct iommu_domain *domain)
{
	struct dmar_domain *dmar_domain = to_dmar_domain(domain);
	struct intel_lu_domain *ld;

	mutex_lock(&lu_out.lock);
	if (dmar_domain->lu_preserved) {
		lu_free_devs(dmar_domain);
		ld = lu_find_domain(dmar_domain);
		/* Called at abort: KHO takes pages back */
		if (ld)
			WARN_ON_ONCE(!lu_domain_release(ld));
		dmar_domain->lu_preserved = false;
	}
	mutex_unlock(&lu_out.lock);
}

/**
 * intel_iommu_lu_domain_free - a handed-over domain is being freed
 * @dmar_domain: the domain
 *
 * Its owner let it go after it was handed over (the VMM closed it): its
 * devices were detached, their context entries changed, and the kexec
 * hands nothing of theirs over. Once the handover is finalized KHO cannot
 * take the page-table pages back: they stay preserved, unused, until
 * abort, or the next kernel keeps them reserved.
 */
void intel_iommu_lu_domain_free(struct dmar_domain *dmar_domain)
{
	struct intel_lu_domain *ld;

	mutex_lock(&lu_out.lock);
	lu_free_devs(dmar_domain);
	ld = lu_find_domain(dmar_domain);
	if (ld && !lu_domain_release(ld))
		ld->domain = NULL;
	dmar_domain->lu_preserved = false;
	mutex_unlock(&lu_out.lock);
}

static int lu_preserve_page(phys_addr_t phys)
{
	unsigned int i;
	int err;

	for (i = 0; i < lu_out.nr_tables; i++)
		if (lu_out.tables[i] == phys)
			return 0;
	err = kho_preserve_phys(phys, VTD_PAGE_SIZE);
	if (!err)
		lu_out.tables[lu_out.nr_tables++] = phys;
	return err;
}

static void lu_unpreserve_pages(void)
{
	while (lu_out.nr_tables)
		WARN_ON_ONCE(kho_unpreserve_phys(lu_out.tables[--lu_out.nr_tables],
						 VTD_PAGE_SIZE));
	kfree(lu_out.tables);
	lu_out.tables = NULL;
}

/* Preserve the root table and context table that hold @d's entry */
static int lu_preserve_context(struct intel_lu_dev *d)
{
	struct intel_iommu *iommu = d->iommu;
	phys_addr_t ctx;

	spin_lock(&iommu->lock);
	ctx = iommu->root_entry[PCI_BUS_NUM(d->sid)].lo;
	spin_unlock(&iommu->lock);
	if (!(ctx & 1))
		return -EINVAL;
	return lu_preserve_page(virt_to_phys(iommu->root_entry)) ?:
	       lu_preserve_page(ctx & VTD_PAGE_MASK);
}

static int lu_build_fdt(void *fdt, size_t size)
{
	struct dmar_drhd_unit *drhd;
	struct intel_iommu *iommu;
	struct intel_lu_dev *d;
	char name[32];
	int err;

	err = fdt_create(fdt, size) ?:
	      fdt_finish_reservemap(fdt) ?:
	      fdt_begin_node(fdt, "") ?:
	      fdt_property_string(fdt, "compatible", INTEL_LU_COMPATIBLE);
	if (err)
		return err;

	rcu_read_lock();
	for_each_active_iommu(iommu, drhd) {
		bool open = false;
		u64 root = virt_to_phys(iommu->root_entry);

		list_for_each_entry(d, &lu_out.devs, link) {
			u32 did = d->did, aw = d->aw;

			if (d->iommu != iommu)
				continue;
			if (!open) {
				snprintf(name, sizeof(name), "dmar@%llx",
					 iommu->reg_phys);
				err = fdt_begin_node(fdt, name) ?:
				      fdt_property(fdt, "root-table", &root,
						   sizeof(root));
				if (err)
					goto out;
				open = true;
			}
			snprintf(name, sizeof(name), "sid@%x", d->sid);
			err = fdt_begin_node(fdt, name) ?:
			      fdt_property(fdt, "domain-id", &did, sizeof(did)) ?:
			      fdt_property(fdt, "page-table", &d->page_table,
					   sizeof(d->page_table)) ?:
			      fdt_property(fdt, "address-width", &aw,
					   sizeof(aw)) ?:
			      fdt_property(fdt, "token", &d->token,
					   sizeof(d->token)) ?:
			      fdt_end_node(fdt);
			if (err)
				goto out;
		}
		if (open) {
			err = fdt_end_node(fdt);
			if (err)
				goto out;
		}
	}
out:
	rcu_read_unlock();
	return err ?: fdt_end_node(fdt) ?: fdt_finish(fdt);
}

static void lu_keep_dma(bool keep)
{
	struct intel_lu_dev *d;

	list_for_each_entry(d, &lu_out.devs, link)
		WRITE_ONCE(d->pdev->lu_keep_dma, keep);
}

static int lu_finalize(struct kho_serialization *ser)
{
	struct intel_lu_dev *d;
	unsigned int nr = 0;
	struct folio *fdt;
	size_t size;
	int err;

	lockdep_assert_held(&lu_out.lock);
	list_for_each_entry(d, &lu_out.devs, link)
		nr++;
	if (!nr)
		return 0;

	/* A root table and a context table per device at most */
	lu_out.tables = kcalloc(2 * nr, sizeof(*lu_out.tables), GFP_KERNEL);
	if (!lu_out.tables)
		return -ENOMEM;
	list_for_each_entry(d, &lu_out.devs, link) {
		err = lu_preserve_context(d);
		if (err)
			goto out_unpreserve;
	}

	/* Well over what a unit and each device take in the blob */
	size = PAGE_ALIGN(1024 + nr * 256);
	err = -ENOMEM;
	fdt = folio_alloc(GFP_KERNEL | __GFP_ZERO, get_order(size));
	if (!fdt)
		goto out_unpreserve;
	err = lu_build_fdt(folio_address(fdt), folio_size(fdt));
	if (err) {
		err = -ENOSPC;
		goto out_put;
	}
	err = kho_preserve_folio(fdt);
	if (err)
		goto out_put;
	err = kho_add_subtree(ser, INTEL_LU_NAME, folio_address(fdt));
	if (err) {
		kho_unpreserve_folio(fdt);
		goto out_put;
	}
	lu_out.fdt = fdt;
	lu_keep_dma(true);
	pr_info("handing over the translation of %u device(s)\n", nr);
	return 0;

out_put:
	folio_put(fdt);
out_unpreserve:
	lu_unpreserve_pages();
	return err;
}

static void lu_abort(void)
{
	struct intel_lu_domain *ld, *tmp;

	lockdep_assert_held(&lu_out.lock);
	/* Tables of domains freed while finalized: KHO takes them back now */
	list_for_each_entry_safe(ld, tmp, &lu_out.domains, link)
		if (!ld->domain)
			WARN_ON_ONCE(!lu_domain_release(ld));
	if (!lu_out.fdt)
		return;
	lu_keep_dma(false);
	WARN_ON_ONCE(kho_unpreserve_folio(lu_out.fdt));
	folio_put(lu_out.fdt);
	lu_out.fdt = NULL;
	lu_unpreserve_pages();
}

static int lu_kho_notifier(struct notifier_block *nb, unsigned long event,
			   void *data)
{
	int err = 0;

	mutex_lock(&lu_out.lock);
	switch (event) {
	case KEXEC_KHO_FINALIZE:
		err = lu_finalize(data);
		break;
	case KEXEC_KHO_ABORT:
		lu_abort();
		break;
	}
	mutex_unlock(&lu_out.lock);
	return notifier_from_errno(err);
}

/*
 * After the domains' owners (iommufd's notifier has a higher priority):
 * they ask for their domains to be handed over from their own notifier.
 */
static struct notifier_block lu_kho_nb = {
	.notifier_call = lu_kho_notifier,
};

/**
 * intel_iommu_lu_init - hand translations over at every kexec with handover
 */
void __init intel_iommu_lu_init(void)
{
	if (kho_is_enabled() && register_kho_notifier(&lu_kho_nb))
		pr_warn("cannot register with KHO: no translation is handed over\n");
}

/**
 * intel_iommu_lu_shutdown - keep the handed-over translation at the kexec
 * @iommu: the unit
 *
 * Called at every shutdown, reboot and kexec, with the other CPUs stopped.
 * If this is a kexec that carries the handover, and the handover carries
 * devices of @iommu, clear every other context entry, and every entry of
 * theirs that is no longer what was handed over, and leave translation on.
 *
 * Return: true if translation is to stay on.
 */
bool intel_iommu_lu_shutdown(struct intel_iommu *iommu)
{
	struct context_entry *ctx;
	struct intel_lu_dev *d;
	unsigned int kept = 0;
	bool mine = false;
	int bus, devfn;

	/* No lock: nothing else runs, and a finalized handover stays */
	if (!lu_out.fdt || !kho_kexec_hands_over())
		return false;
	list_for_each_entry(d, &lu_out.devs, link)
		mine |= d->iommu == iommu;
	if (!mine)
		return false;

	spin_lock(&iommu->lock);
	list_for_each_entry(d, &lu_out.devs, link) {
		struct context_entry *ce;

		if (d->iommu != iommu)
			continue;
		ce = iommu_context_addr(iommu, PCI_BUS_NUM(d->sid),
					d->sid & 0xff, 0);
		if (!ce || !context_present(ce) ||
		    context_domain_id(ce) != d->did ||
		    (ce->lo & VTD_PAGE_MASK) != d->page_table)
			pr_err("%s: %s left its domain after the handover: its DMA is blocked\n",
			       iommu->name, pci_name(d->pdev));
	}
	for (bus = 0; bus < 256; bus++) {
		struct root_entry *re = &iommu->root_entry[bus];
		bool bus_kept = false;

		if (!(re->lo & 1))
			continue;
		ctx = phys_to_virt(re->lo & VTD_PAGE_MASK);
		for (devfn = 0; devfn < 256; devfn++) {
			struct context_entry *ce = &ctx[devfn];
			bool keep = false;

			if (!context_present(ce))
				continue;
			list_for_each_entry(d, &lu_out.devs, link)
				keep |= d->iommu == iommu &&
					d->sid == PCI_DEVID(bus, devfn) &&
					d->did == context_domain_id(ce) &&
					d->page_table == (ce->lo & VTD_PAGE_MASK) &&
					d->aw == (ce->hi & 7);
			if (keep) {
				kept++;
				bus_kept = true;
				continue;
			}
			context_clear_entry(ce);
			__iommu_flush_cache(iommu, ce, sizeof(*ce));
		}
		/*
		 * Only the context tables of buses with a device kept are
		 * preserved: the next kernel may reuse any other at once.
		 */
		if (!bus_kept) {
			re->lo = 0;
			re->hi = 0;
			__iommu_flush_cache(iommu, re, sizeof(*re));
		}
	}
	spin_unlock(&iommu->lock);

	iommu->flush.flush_context(iommu, 0, 0, 0, DMA_CCMD_GLOBAL_INVL);
	iommu->flush.flush_iotlb(iommu, 0, 0, 0, DMA_TLB_GLOBAL_FLUSH);
	pr_info("%s: translation stays on for %u device(s)\n", iommu->name,
		kept);
	return true;
}

/* The next kernel: what the previous one handed over */
static void *lu_in_fdt __initdata;
static struct folio *lu_in_folio __initdata;

#define LU_EARLY_UNITS		64
#define LU_EARLY_BAD_DEVS	32
/*
 * A bound on a walk, which a loop in the tables would make long: 1 << 22
 * table pages map 8 TiB with 4 KiB IOPTEs.
 */
#define LU_EARLY_MAX_TABLES	BIT(22)

/* Units blocked whole early, by register base: intel_iommu_init() is quiet */
static u64 lu_early_units[LU_EARLY_UNITS] __initdata;
static unsigned int lu_early_nr __initdata;
static const char *lu_early_why;	/* no usable blob: why */
static bool lu_early_done __initdata;
static unsigned int lu_early_tables __initdata;
/* Tables of a unit already walked, and found good, for its other devices */
static u64 lu_early_walked[32] __initdata;
static unsigned int lu_early_nr_walked __initdata;

/* Old root and context tables, freed once no unit uses them */
struct lu_old_table {
	struct list_head link;
	struct intel_iommu *iommu;
	phys_addr_t phys;
};

static LIST_HEAD(lu_old_tables);

/**
 * intel_iommu_lu_in_init - find the handover of the previous kernel
 */
void __init intel_iommu_lu_in_init(void)
{
	phys_addr_t phys;
	struct folio *folio;
	void *fdt;

	/*
	 * Only a live-update host takes translations over: iommufd, which
	 * takes them from here, does nothing without kho=on. Whatever is
	 * wrong with the blob was said before mem_init().
	 */
	if (!kho_is_enabled() || (lu_early_done && lu_early_why) ||
	    kho_retrieve_subtree(INTEL_LU_NAME, &phys))
		return;
	/* What the early check found, if it ran, is not ours until taken */
	lu_in_fdt = NULL;
	folio = kho_restore_folio(phys);
	if (!folio) {
		pr_err("the handover's blob is not preserved memory: translations are not taken over\n");
		return;
	}
	fdt = folio_address(folio);
	if (fdt_check_header(fdt) || fdt_totalsize(fdt) > folio_size(folio) ||
	    fdt_node_check_compatible(fdt, 0, INTEL_LU_COMPATIBLE)) {
		pr_err("the handover's blob is damaged or of another version: translations are not taken over\n");
		folio_put(folio);
		return;
	}
	lu_in_folio = folio;
	lu_in_fdt = fdt;
}

/**
 * intel_iommu_lu_in_done - forget the handover once every unit has its own
 */
void __init intel_iommu_lu_in_done(void)
{
	if (lu_in_folio)
		folio_put(lu_in_folio);
	lu_in_folio = NULL;
	lu_in_fdt = NULL;
}

static int __init lu_in_node(struct intel_iommu *iommu)
{
	char name[32];

	if (!lu_in_fdt)
		return -ENOENT;
	snprintf(name, sizeof(name), "dmar@%llx", iommu->reg_phys);
	return fdt_subnode_offset(lu_in_fdt, 0, name);
}

/**
 * intel_iommu_lu_inherited - does the handover describe @iommu?
 * @iommu: a unit found with translation on
 *
 * Return: true if it does: intel_iommu_lu_adopt() takes its tables over.
 */
bool __init intel_iommu_lu_inherited(struct intel_iommu *iommu)
{
	return lu_in_node(iommu) >= 0;
}

/* A property of exactly @size bytes, maybe unaligned in the blob */
static int __init lu_get_prop(int node, const char *name, void *val,
			      int size)
{
	const void *p;
	int len;

	p = fdt_getprop(lu_in_fdt, node, name, &len);
	if (!p || len != size)
		return -EINVAL;
	memcpy(val, p, size);
	return 0;
}

/* Take an old root or context table back, once, to read and free it */
static int __init lu_take_page(struct list_head *list,
			       struct intel_iommu *iommu, phys_addr_t phys)
{
	struct lu_old_table *t;
	int err;

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	err = kho_restore_phys(phys, VTD_PAGE_SIZE);
	if (err) {
		kfree(t);
		return err;
	}
	t->iommu = iommu;
	t->phys = phys;
	list_add_tail(&t->link, list);
	return 0;
}

static int __init lu_take_old_table(struct intel_iommu *iommu,
				    phys_addr_t phys)
{
	struct lu_old_table *t;

	list_for_each_entry(t, &lu_old_tables, link)
		if (t->phys == phys)
			return 0;
	return lu_take_page(&lu_old_tables, iommu, phys);
}

/* The page-table pages of the domain being taken over, and its unit */
static LIST_HEAD(lu_walked_pages);
static struct intel_iommu *lu_walked_iommu __initdata;

static int __init lu_restore_table(phys_addr_t phys)
{
	return lu_take_page(&lu_walked_pages, lu_walked_iommu, phys);
}

/*
 * A device handed over may only reach memory handed over outside the
 * direct map (guestmemfs): the only memory a marked HWPT may map.
 */
static int __init lu_check_leaf(phys_addr_t phys, u64 size)
{
	const struct range *r;
	unsigned int i, nr;

	r = kho_in_unmapped(&nr);
	for (i = 0; i < nr; i++)
		if (r[i].start <= phys && phys + size - 1 <= r[i].end &&
		    phys + size - 1 >= phys)
			return 0;
	return -EFAULT;
}

static const struct iommu_domain_ops lu_pkernfs_ops;

/*
 * An IOMMU_DOMAIN_PKERNFS domain: the page tables of a domain handed over,
 * taken back at boot, under the domain ID they had. Attach-only: nothing
 * maps into it or unmaps from it; freeing it frees its table pages.
 */
struct intel_lu_pkernfs {
	struct dmar_domain domain;
	struct intel_iommu *iommu;
	u16 did;
	unsigned int nr_pages;
	phys_addr_t pages[] __counted_by(nr_pages);
};

static struct intel_lu_pkernfs *to_lu_pkernfs(struct iommu_domain *domain)
{
	return container_of(to_dmar_domain(domain), struct intel_lu_pkernfs,
			    domain);
}

/* A device taken over at boot, until it is probed and put in its domain */
struct intel_lu_in_dev {
	struct list_head link;
	struct intel_iommu *iommu;
	struct intel_lu_pkernfs *pk;
	u16 sid;
};

static LIST_HEAD(lu_in_devs);
static DEFINE_MUTEX(lu_in_lock);
/* A device is put in its domain whole, or the domain is freed, not both */
static DEFINE_MUTEX(lu_probe_lock);

static struct intel_lu_pkernfs *__init lu_pkernfs_alloc(struct intel_iommu *iommu,
						 u16 did, int aw, u64 token,
						 u64 page_table,
						 unsigned int nr_pages)
{
	struct iommu_domain_info *di;
	struct intel_lu_pkernfs *pk;
	struct dmar_domain *domain;

	pk = kzalloc(struct_size(pk, pages, nr_pages), GFP_KERNEL);
	di = kzalloc(sizeof(*di), GFP_KERNEL);
	if (!pk || !di)
		goto out_free;
	pk->nr_pages = nr_pages;
	pk->iommu = iommu;
	pk->did = did;

	domain = &pk->domain;
	INIT_LIST_HEAD(&domain->devices);
	INIT_LIST_HEAD(&domain->dev_pasids);
	INIT_LIST_HEAD(&domain->cache_tags);
	spin_lock_init(&domain->lock);
	spin_lock_init(&domain->cache_lock);
	xa_init(&domain->iommu_array);
	domain->nid = NUMA_NO_NODE;
	domain->agaw = aw;
	domain->gaw = agaw_to_width(aw);
	domain->max_addr = GENMASK_ULL(domain->gaw - 1, 0);
	/* Legacy mode: what the hardware says of its table walks */
	domain->iommu_coherency = ecap_coherent(iommu->ecap);
	domain->pgd = phys_to_virt(page_table);
	domain->domain.type = IOMMU_DOMAIN_PKERNFS;
	domain->domain.ops = &lu_pkernfs_ops;
	domain->domain.owner = &intel_iommu_ops;
	domain->domain.lu_token = token;
	domain->domain.pgsize_bitmap = SZ_4K;
	domain->domain.geometry.force_aperture = true;
	domain->domain.geometry.aperture_end = domain->max_addr;
	/*
	 * The domain holds its ID itself, from now until it is freed: a
	 * device may translate with it, through its copied context entry,
	 * before it is attached and after another device has left.
	 */
	di->refcnt = 1;
	di->did = did;
	di->iommu = iommu;
	if (xa_err(xa_store(&domain->iommu_array, iommu->seq_id, di,
			    GFP_KERNEL)))
		goto out_free;
	return pk;

out_free:
	kfree(di);
	kfree(pk);
	return NULL;
}

/*
 * Walk and take back the page tables of a device's domain, into a new
 * PKERNFS domain. On failure the pages taken back go with the old tables,
 * freed once the hardware no longer reads them.
 */
static int __init lu_take_tables(struct intel_iommu *iommu, u16 did, int aw,
				 u64 token, phys_addr_t page_table,
				 struct intel_lu_pkernfs **pkp)
{
	struct lu_old_table *t, *tmp;
	struct intel_lu_pkernfs *pk;
	ktime_t t0 = ktime_get();
	unsigned int nr = 0;
	int err;

	lu_walked_iommu = iommu;
	err = lu_walk_tables(page_table, agaw_to_level(aw), lu_restore_table,
			     lu_check_leaf);
	list_for_each_entry(t, &lu_walked_pages, link)
		nr++;
	pk = err ? NULL : lu_pkernfs_alloc(iommu, did, aw, token, page_table,
					   nr);
	if (!pk) {
		list_splice_tail_init(&lu_walked_pages, &lu_old_tables);
		return err ?: -ENOMEM;
	}
	nr = 0;
	list_for_each_entry_safe(t, tmp, &lu_walked_pages, link) {
		pk->pages[nr++] = t->phys;
		list_del(&t->link);
		kfree(t);
	}
	pr_info("%s: the tables of the domain handed over as %#llx: %u page(s), taken back in %lld us\n",
		iommu->name, token, nr, ktime_us_delta(ktime_get(), t0));
	*pkp = pk;
	return 0;
}

/* What the handover says of one device */
struct lu_in_desc {
	u32 sid, did, aw;
	u64 page_table, token;
};

/* Page tables shared by devices of one domain are taken back once */
struct lu_adopted {
	struct lu_in_desc d;
	struct intel_lu_pkernfs *pk;
};

/*
 * Devices of one domain share its ID, its page table and its token; devices
 * of two share none of them.
 *
 * Return: 1 if @a and @b are of one domain, 0 if not, -EEXIST if they
 * cannot be either.
 */
static int __init lu_same_domain(const struct lu_in_desc *a,
				 const struct lu_in_desc *b)
{
	bool same_did = a->did == b->did;
	bool same_table = a->page_table == b->page_table;
	bool same_token = a->token == b->token;

	if (same_did != same_table || same_did != same_token)
		return -EEXIST;
	return same_did;
}

/* Read and check a device's node against what the unit can do */
static int __init lu_parse_dev(int node, u64 cap, struct lu_in_desc *d)
{
	const char *name = fdt_get_name(lu_in_fdt, node, NULL);

	if (!name || sscanf(name, "sid@%x", &d->sid) != 1 || d->sid > 0xffff ||
	    lu_get_prop(node, "domain-id", &d->did, sizeof(d->did)) ||
	    lu_get_prop(node, "address-width", &d->aw, sizeof(d->aw)) ||
	    lu_get_prop(node, "page-table", &d->page_table,
			sizeof(d->page_table)) ||
	    lu_get_prop(node, "token", &d->token, sizeof(d->token)))
		return -EINVAL;
	if (!d->did || d->did >= cap_ndoms(cap) || d->aw < 1 || d->aw > 4 ||
	    !(cap_sagaw(cap) & BIT(d->aw)) || !PAGE_ALIGNED(d->page_table))
		return -EINVAL;
	return 0;
}

/* The context table of the device in the old root table, or 0 */
static phys_addr_t __init lu_ctx_table(const struct root_entry *old_root,
				       const struct lu_in_desc *d)
{
	u64 lo = old_root[PCI_BUS_NUM(d->sid)].lo;

	return lo & 1 ? lo & VTD_PAGE_MASK : 0;
}

/* Is the device's entry in the old context table at @ctx what was said? */
static int __init lu_check_ce(const struct lu_in_desc *d, phys_addr_t ctx,
			      struct context_entry *ce)
{
	*ce = ((struct context_entry *)phys_to_virt(ctx))[d->sid & 0xff];
	if (!context_present(ce) || context_domain_id(ce) != d->did ||
	    (ce->lo & VTD_PAGE_MASK) != d->page_table || (ce->hi & 7) != d->aw ||
	    ((ce->lo >> 2) & 3) != CONTEXT_TT_MULTI_LEVEL)
		return -ENOENT;
	return 0;
}

/*
 * Before memory goes to the page allocator (mem_init()), the hardware may
 * still be translating devices through the tables the previous kernel
 * left it: every page those tables use, and every page they map, must be
 * memory nothing here can be given. Where the handover does not show
 * that, the DMA is blocked then, from detect_intel_iommu(), not at
 * intel_iommu_init(), long after that memory may have been reused: a
 * device's entry is cleared in the old context table, or the whole unit
 * gets an empty root table. Translation stays on: turning it off would
 * let the DMA through untranslated.
 */

/* A page preserved by the previous kernel and not taken back */
static bool __init lu_early_preserved(phys_addr_t phys)
{
	return phys && kho_in_block_order(phys) == 0;
}

/* Table pages must be preserved; a walk is bounded (a loop ends it) */
static int __init lu_early_table(phys_addr_t phys)
{
	if (++lu_early_tables > LU_EARLY_MAX_TABLES)
		return -E2BIG;
	return lu_early_preserved(phys) ? 0 : -EFAULT;
}

/*
 * Find the handover's blob in place: nothing can be taken back before the
 * page allocator exists. intel_iommu_lu_in_init() takes it back later.
 */
static const char *__init lu_early_find_blob(void)
{
	phys_addr_t phys;
	int order, err;
	void *fdt;

	err = kho_retrieve_subtree(INTEL_LU_NAME, &phys);
	if (err == -ENOENT)
		return "no handover describes it";
	if (err)
		return "the handover's node is damaged";
	order = kho_in_block_order(phys);
	if (order < 0)
		return "the handover's blob is not preserved memory";
	fdt = phys_to_virt(phys);
	if (fdt_check_header(fdt) || fdt_totalsize(fdt) > PAGE_SIZE << order ||
	    fdt_node_check_compatible(fdt, 0, INTEL_LU_COMPATIBLE))
		return "the handover's blob is damaged or of another version";
	lu_in_fdt = fdt;
	return NULL;
}

/**
 * intel_iommu_lu_early_begin - find what the previous kernel handed over
 *
 * Called from detect_intel_iommu(), before mem_init() gives memory to the
 * page allocator. Outside kdump, on a live-update host (kho=on), finds the
 * handover's blob so that intel_iommu_lu_early_unit() can check each unit
 * left translating against it.
 *
 * Return: true if the units are to be checked.
 */
bool __init intel_iommu_lu_early_begin(void)
{
	if (is_kdump_kernel() || !kho_is_enabled())
		return false;
	lu_early_why = lu_early_find_blob();
	lu_early_done = true;
	return true;
}

/* A bound on each wait, in register reads: udelay() is not calibrated yet */
#define LU_EARLY_POLLS		1000000UL
#define LU_EARLY_QI_ERRORS	(DMA_FSTS_IQE | DMA_FSTS_ITE | DMA_FSTS_ICE)
#define LU_EARLY_GSTS		(DMA_GSTS_TES | DMA_GSTS_QIES | DMA_GSTS_IRES | \
				 DMA_GSTS_CFIS)

static int __init lu_early_wait(void __iomem *reg, u64 mask, u64 want,
				bool quad)
{
	unsigned long i;

	for (i = 0; i < LU_EARLY_POLLS; i++) {
		u64 val = quad ? dmar_readq(reg) : readl(reg);

		if ((val & mask) == want)
			return 0;
		cpu_relax();
	}
	return -ETIMEDOUT;
}

/*
 * What the early path gives the hardware, and never takes back: the unit
 * may use them until intel_iommu_init() (or for good, without it). In
 * the kernel image, not in memory the blocked DMA might still reach.
 */
static struct root_entry lu_empty_root[VTD_PAGE_SIZE / sizeof(struct root_entry)]
	__aligned(VTD_PAGE_SIZE);
static u8 lu_early_queue[VTD_PAGE_SIZE] __aligned(VTD_PAGE_SIZE);
static u32 lu_early_status;
/* A status of its own for each wait: a late write cannot pass for another */
static u32 lu_early_seq __initdata;

/*
 * Invalidate the context cache (and the PASID cache in scalable mode) and
 * the IOTLB globally with a new invalidation queue of our own (recent
 * units have no register-based invalidation); intel_iommu_init() replaces
 * it.
 */
static int __init lu_early_qi(void __iomem *reg, u64 cap, u64 ecap,
			      u64 rtaddr, u32 gcmd)
{
	unsigned int shift = DMAR_IQ_SHIFT + !!ecap_smts(ecap), n = 0;
	u64 *q = (u64 *)lu_early_queue, iqa = __pa(lu_early_queue);
	unsigned int w = 1U << (shift - 3);	/* u64 per descriptor */
	u32 seq = ++lu_early_seq;
	unsigned long i;

	memset(lu_early_queue, 0, sizeof(lu_early_queue));
	q[n++ * w] = QI_CC_GRAN(DMA_CCMD_GLOBAL_INVL) | QI_CC_TYPE;
	if (rtaddr & DMA_RTADDR_SMT)
		q[n++ * w] = QI_PC_GRAN(QI_PC_GLOBAL) | QI_PC_TYPE;
	q[n++ * w] = QI_IOTLB_DR(cap_read_drain(cap)) |
		     QI_IOTLB_DW(cap_write_drain(cap)) |
		     QI_IOTLB_GRAN(DMA_TLB_GLOBAL_FLUSH) | QI_IOTLB_TYPE;
	q[n * w] = QI_IWD_STATUS_DATA(seq) | QI_IWD_STATUS_WRITE |
		   QI_IWD_FENCE | QI_IWD_TYPE;
	q[n++ * w + 1] = __pa(&lu_early_status);
	WRITE_ONCE(lu_early_status, 0);
	clflush_cache_range(lu_early_queue, n << shift);
	clflush_cache_range(&lu_early_status, sizeof(lu_early_status));

	writel(0, reg + DMAR_IQT_REG);
	/* 256-bit descriptors where the unit can do scalable mode */
	if (ecap_smts(ecap))
		iqa |= BIT_ULL(11);
	dmar_writeq(reg + DMAR_IQA_REG, iqa);
	writel(gcmd | DMA_GCMD_QIE, reg + DMAR_GCMD_REG);
	if (lu_early_wait(reg + DMAR_GSTS_REG, DMA_GSTS_QIES, DMA_GSTS_QIES,
			  false))
		return -ETIMEDOUT;
	writel(n << shift, reg + DMAR_IQT_REG);
	for (i = 0; i < LU_EARLY_POLLS; i++) {
		if (READ_ONCE(lu_early_status) == seq)
			return 0;
		if (readl(reg + DMAR_FSTS_REG) & LU_EARLY_QI_ERRORS)
			return -EIO;
		cpu_relax();
	}
	return -ETIMEDOUT;
}

/* The same through registers, on units without queued invalidation */
static int __init lu_early_regs(void __iomem *reg, u64 cap, u64 ecap)
{
	void __iomem *iotlb = reg + ecap_iotlb_offset(ecap) + 8;
	u64 val;

	dmar_writeq(reg + DMAR_CCMD_REG, DMA_CCMD_ICC | DMA_CCMD_GLOBAL_INVL);
	if (lu_early_wait(reg + DMAR_CCMD_REG, DMA_CCMD_ICC, 0, true))
		return -ETIMEDOUT;
	val = DMA_TLB_IVT | DMA_TLB_GLOBAL_FLUSH;
	if (cap_read_drain(cap))
		val |= DMA_TLB_READ_DRAIN;
	if (cap_write_drain(cap))
		val |= DMA_TLB_WRITE_DRAIN;
	dmar_writeq(iotlb, val);
	return lu_early_wait(iotlb, DMA_TLB_IVT, 0, true);
}

/*
 * Quiet a unit the previous kernel left running: its fault events masked
 * (the previous kernel's vector is gone), interrupt remapping off (the
 * remapping table was not handed over, and a device still doing DMA can
 * still send interrupts through it), queued invalidation off (its queue
 * was not handed over either). Goes on after a step that fails.
 *
 * Return: the unit's persistent GCMD bits as they now are, through @gcmd;
 * 0 or the first error.
 */
static int __init lu_early_quiet(void __iomem *reg, u32 *gcmd)
{
	u32 sts = readl(reg + DMAR_GSTS_REG) & LU_EARLY_GSTS;
	unsigned long i;
	int err = 0;

	writel(DMA_FECTL_IM, reg + DMAR_FECTL_REG);
	if (sts & DMA_GSTS_IRES) {
		writel(sts & ~DMA_GCMD_IRE, reg + DMAR_GCMD_REG);
		err = lu_early_wait(reg + DMAR_GSTS_REG, DMA_GSTS_IRES, 0,
				    false);
		sts = readl(reg + DMAR_GSTS_REG) & LU_EARLY_GSTS;
	}
	if (sts & DMA_GSTS_QIES) {
		/* Let it finish what it was given, unless it stopped on it */
		for (i = 0; i < LU_EARLY_POLLS; i++) {
			if (dmar_readq(reg + DMAR_IQH_REG) ==
			    dmar_readq(reg + DMAR_IQT_REG) ||
			    readl(reg + DMAR_FSTS_REG) & LU_EARLY_QI_ERRORS)
				break;
			cpu_relax();
		}
		writel(sts & ~DMA_GCMD_QIE, reg + DMAR_GCMD_REG);
		err = lu_early_wait(reg + DMAR_GSTS_REG, DMA_GSTS_QIES, 0,
				    false) ?: err;
		sts = readl(reg + DMAR_GSTS_REG) & LU_EARLY_GSTS;
	}
	writel(LU_EARLY_QI_ERRORS, reg + DMAR_FSTS_REG);
	*gcmd = sts;
	return err;
}

/*
 * Quiet the unit, set the empty root table if @block, then make the unit
 * forget what it cached of the old tables. The root table is set even if
 * the unit could not be quieted.
 */
static int __init lu_early_flush(void __iomem *reg, u64 cap, u64 ecap,
				 bool block, u64 rtaddr)
{
	int err, ret;
	u32 gcmd;

	err = lu_early_quiet(reg, &gcmd);
	if (block)
		clflush_cache_range(lu_empty_root, sizeof(lu_empty_root));
	/* Entries written through the CPU cache must reach memory first */
	if (cap_rwbf(cap)) {
		writel(gcmd | DMA_GCMD_WBF, reg + DMAR_GCMD_REG);
		ret = lu_early_wait(reg + DMAR_GSTS_REG, DMA_GSTS_WBFS, 0,
				    false);
		err = err ?: ret;
	}
	if (block) {
		/* The table mode cannot change while translation is on */
		dmar_writeq(reg + DMAR_RTADDR_REG,
			    __pa(lu_empty_root) | (rtaddr & DMA_RTADDR_SMT));
		writel(gcmd | DMA_GCMD_SRTP, reg + DMAR_GCMD_REG);
		ret = lu_early_wait(reg + DMAR_GSTS_REG, DMA_GSTS_RTPS,
				    DMA_GSTS_RTPS, false);
		err = err ?: ret;
	}
	/* With the old queue still on, nothing else can invalidate */
	if (gcmd & DMA_GCMD_QIE)
		return err ?: -EBUSY;
	if (ecap_qis(ecap))
		ret = lu_early_qi(reg, cap, ecap, rtaddr, gcmd);
	else
		ret = lu_early_regs(reg, cap, ecap);
	return err ?: ret;
}

/* Check one device's node, its context entry and its tables */
static int __init lu_early_check_dev(int node, int dev, u64 cap,
				     const struct root_entry *old_root)
{
	struct lu_in_desc d, o;
	struct context_entry ce;
	unsigned int i;
	phys_addr_t ctx;
	int err, other;

	err = lu_parse_dev(dev, cap, &d);
	if (err)
		return err;
	ctx = lu_ctx_table(old_root, &d);
	if (!lu_early_preserved(ctx))
		return -ENOENT;
	err = lu_check_ce(&d, ctx, &ce);
	if (err)
		return err;
	/* One domain ID, one page table, one token, as at adopt */
	fdt_for_each_subnode(other, lu_in_fdt, node) {
		if (other == dev)
			break;
		if (!lu_parse_dev(other, cap, &o) && lu_same_domain(&o, &d) < 0)
			return -EEXIST;
	}
	for (i = 0; i < lu_early_nr_walked; i++)
		if (lu_early_walked[i] == d.page_table)
			return 0;
	lu_early_tables = 0;
	err = lu_walk_tables(d.page_table, agaw_to_level(d.aw),
			     lu_early_table, lu_check_leaf);
	if (!err && lu_early_nr_walked < ARRAY_SIZE(lu_early_walked))
		lu_early_walked[lu_early_nr_walked++] = d.page_table;
	return err;
}

/*
 * Check each device the handover describes for the unit, as
 * intel_iommu_lu_adopt() will, and its tables as far as they can be
 * checked without taking them back. Drop the nodes of those that fail (so
 * intel_iommu_lu_adopt() no longer sees them), clear every present
 * context entry no remaining node describes, and every root entry whose
 * context table was not preserved.
 *
 * Return: the number of entries cleared, or a negative error (and @why)
 * if the unit's tables cannot be used at all: the caller blocks the unit.
 */
static int __init lu_early_check_devs(u64 reg_phys, int node, u64 cap,
				      phys_addr_t root, const char **why)
{
	struct root_entry *old_root = phys_to_virt(root);
	int dev, bad[LU_EARLY_BAD_DEVS], nr_bad = 0, i, cleared = 0;
	unsigned int bus, devfn;

	lu_early_nr_walked = 0;

	fdt_for_each_subnode(dev, lu_in_fdt, node) {
		int err = lu_early_check_dev(node, dev, cap, old_root);

		if (!err)
			continue;
		pr_err("DMAR at %#llx: %s: not as handed over (%d): its DMA is blocked\n",
		       reg_phys, fdt_get_name(lu_in_fdt, dev, NULL) ?: "?",
		       err);
		if (nr_bad == ARRAY_SIZE(bad)) {
			*why = "too many devices are not as handed over";
			return -E2BIG;
		}
		bad[nr_bad++] = dev;
	}
	/* Offsets stay valid: a node becomes NOP tags in place */
	for (i = 0; i < nr_bad; i++)
		fdt_nop_node(lu_in_fdt, bad[i]);

	for (bus = 0; bus < 256; bus++) {
		phys_addr_t ctx = old_root[bus].lo & VTD_PAGE_MASK;
		struct context_entry *ce;

		if (!(old_root[bus].lo & 1))
			continue;
		/* No device of the bus handed over: nothing to read there */
		if (!lu_early_preserved(ctx)) {
			old_root[bus].lo = 0;
			old_root[bus].hi = 0;
			clflush_cache_range(&old_root[bus], sizeof(old_root[bus]));
			cleared++;
			continue;
		}
		ce = phys_to_virt(ctx);
		for (devfn = 0; devfn < 256; devfn++) {
			char name[16];

			if (!context_present(&ce[devfn]))
				continue;
			snprintf(name, sizeof(name), "sid@%x",
				 PCI_DEVID(bus, devfn));
			if (fdt_subnode_offset(lu_in_fdt, node, name) >= 0)
				continue;
			context_clear_entry(&ce[devfn]);
			clflush_cache_range(&ce[devfn], sizeof(ce[devfn]));
			cleared++;
		}
	}
	return cleared;
}

static void __iomem *__init lu_early_map(u64 reg_phys, u32 size)
{
	void __iomem *reg = early_ioremap(reg_phys, size);

	if (!reg)
		pr_crit("DMAR at %#llx: cannot map its registers: its DMA goes on unchecked\n",
			reg_phys);
	return reg;
}

/**
 * intel_iommu_lu_early_unit - block what a unit must not translate
 * @header: the unit's DRHD structure in the DMAR table
 * @arg: unused
 *
 * For a unit left translating by the previous kernel: keep the devices
 * the handover describes and checks out translating as they are, block
 * every other one, or the whole unit if its tables cannot be used.
 * A dmar_res_handler_t, for the walk of the DMAR table in
 * detect_intel_iommu() after intel_iommu_lu_early_begin().
 *
 * Return: 0, so that the walk goes on.
 */
int __init intel_iommu_lu_early_unit(struct acpi_dmar_header *header,
				     void *arg)
{
	struct acpi_dmar_hardware_unit *drhd = (void *)header;
	u64 reg_phys = drhd->address, cap, ecap, rtaddr, root;
	const char *why = lu_early_why;
	int node = -1, cleared = 0, err;
	void __iomem *reg;
	char name[32];
	u32 size, gsts;

	reg = lu_early_map(reg_phys, VTD_PAGE_SIZE);
	if (!reg)
		return 0;
	gsts = readl(reg + DMAR_GSTS_REG);
	if (!(gsts & DMA_GSTS_TES)) {
		/*
		 * No translation: its devices were stopped at the kexec, but
		 * remapping their interrupts through a table not handed
		 * over must stop before that memory is reused.
		 */
		if ((gsts & (DMA_GSTS_IRES | DMA_GSTS_QIES)) &&
		    lu_early_quiet(reg, &gsts))
			pr_crit("DMAR at %#llx: interrupt remapping or queued invalidation does not stop\n",
				reg_phys);
		early_iounmap(reg, VTD_PAGE_SIZE);
		return 0;
	}
	/* The IOTLB registers may lie past the first page */
	ecap = dmar_readq(reg + DMAR_ECAP_REG);
	early_iounmap(reg, VTD_PAGE_SIZE);
	size = max_t(u32, VTD_PAGE_SIZE,
		     PAGE_ALIGN(ecap_max_iotlb_offset(ecap)));
	reg = lu_early_map(reg_phys, size);
	if (!reg)
		return 0;
	cap = dmar_readq(reg + DMAR_CAP_REG);
	rtaddr = dmar_readq(reg + DMAR_RTADDR_REG);

	if (!why) {
		snprintf(name, sizeof(name), "dmar@%llx", reg_phys);
		node = fdt_subnode_offset(lu_in_fdt, 0, name);
		if (node < 0)
			why = "no handover describes it";
	}
	if (!why && lu_get_prop(node, "root-table", &root, sizeof(root)))
		why = "its handover is damaged";
	else if (!why && (rtaddr & DMA_RTADDR_SMT))
		why = "scalable mode";
	else if (!why && (rtaddr & VTD_PAGE_MASK) != root)
		why = "the root table is not the one handed over";
	else if (!why && !lu_early_preserved(root))
		why = "the root table is not preserved memory";
	if (!why)
		cleared = lu_early_check_devs(reg_phys, node, cap, root, &why);

	if (why) {
		/* intel_iommu_lu_adopt() must not take any of it over */
		if (node >= 0)
			fdt_nop_node(lu_in_fdt, node);
		if (lu_early_nr < LU_EARLY_UNITS)
			lu_early_units[lu_early_nr++] = reg_phys;
	}
	/* Even with nothing to block: interrupt remapping goes off */
	err = lu_early_flush(reg, cap, ecap, !!why, rtaddr);
	if (err)
		pr_crit("DMAR at %#llx: does not answer (%d): its DMA may go on as the previous kernel left it\n",
			reg_phys, err);
	if (why)
		pr_err("DMAR at %#llx: left translating, but %s: DMA of all its devices is blocked\n",
		       reg_phys, why);
	else if (cleared)
		pr_err("DMAR at %#llx: %d root or context entries the handover does not describe: their DMA is blocked\n",
		       reg_phys, cleared);
	early_iounmap(reg, size);
	return 0;
}

/**
 * intel_iommu_lu_early_blocked - was @iommu blocked before mem_init()?
 * @iommu: a unit found translating
 *
 * Return: true if the unit's DMA was blocked, and said so, early.
 */
bool __init intel_iommu_lu_early_blocked(struct intel_iommu *iommu)
{
	unsigned int i;

	for (i = 0; i < lu_early_nr; i++)
		if (lu_early_units[i] == iommu->reg_phys)
			return true;
	return false;
}

static int __init lu_adopt_dev(struct intel_iommu *iommu, int node,
			       const struct root_entry *old_root,
			       struct lu_adopted *adopted, unsigned int *nr)
{
	struct intel_lu_pkernfs *pk = NULL;
	struct context_entry ce, *new;
	struct intel_lu_in_dev *d;
	struct lu_in_desc desc;
	phys_addr_t ctx;
	unsigned int i;
	u16 sid;
	int err;

	err = lu_parse_dev(node, iommu->cap, &desc);
	if (err)
		return err;
	sid = desc.sid;

	ctx = lu_ctx_table(old_root, &desc);
	if (!ctx)
		return -ENOENT;
	err = lu_take_old_table(iommu, ctx);
	if (err)
		return err;
	err = lu_check_ce(&desc, ctx, &ce);
	if (err)
		return err;

	/* One domain ID, one page table, one token; no ID this kernel took */
	for (i = 0; i < *nr; i++) {
		err = lu_same_domain(&adopted[i].d, &desc);
		if (err < 0)
			return err;
		if (err)
			pk = adopted[i].pk;
	}
	if (!pk && test_bit(desc.did, iommu->domain_ids))
		return -EEXIST;

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	if (!pk) {
		/*
		 * Every table page must be preserved memory, each taken
		 * once (a loop fails), and every page it maps guestmemfs
		 * memory.
		 */
		err = lu_take_tables(iommu, desc.did, desc.aw, desc.token,
				     desc.page_table, &pk);
		if (err) {
			kfree(d);
			return err;
		}
		adopted[*nr].d = desc;
		adopted[*nr].pk = pk;
		(*nr)++;
	}

	spin_lock(&iommu->lock);
	new = iommu_context_addr(iommu, PCI_BUS_NUM(sid), sid & 0xff, 1);
	if (new) {
		*new = ce;
		__iommu_flush_cache(iommu, new, sizeof(*new));
		set_bit(desc.did, iommu->domain_ids);
		set_context_copied(iommu, PCI_BUS_NUM(sid), sid & 0xff);
	}
	spin_unlock(&iommu->lock);
	if (!new) {
		kfree(d);
		return -ENOMEM;
	}
	/* Put in its PKERNFS domain when probed: intel_iommu_lu_probe() */
	d->iommu = iommu;
	d->sid = sid;
	d->pk = pk;
	mutex_lock(&lu_in_lock);
	list_add_tail(&d->link, &lu_in_devs);
	mutex_unlock(&lu_in_lock);
	return 0;
}

/**
 * intel_iommu_lu_adopt - take over the translation the handover describes
 * @iommu: a unit for which intel_iommu_lu_inherited() is true, with a new
 *	empty root table not yet given to the hardware
 *
 * Copies each handed-over context entry that passes the checks into the
 * new tables; the devices' attach is deferred until this kernel gives them
 * a domain. A device that fails them gets no entry: its DMA is blocked.
 * The hardware goes on with the old tables until the new root table is
 * set; intel_iommu_lu_release() frees them after that.
 *
 * Return: 0, even if no device passed; an error if the unit's handover
 * cannot be used at all (scalable mode, another root table, one not
 * preserved): the caller then blocks every device of the unit.
 */
int __init intel_iommu_lu_adopt(struct intel_iommu *iommu)
{
	u64 rtaddr = dmar_readq(iommu->reg + DMAR_RTADDR_REG), root;
	unsigned int nr_devs = 0, nr_ok = 0, nr_adopted = 0;
	struct lu_adopted *adopted;
	int node = lu_in_node(iommu), dev, err;

	if (node < 0 || lu_get_prop(node, "root-table", &root, sizeof(root)))
		return -EINVAL;
	if (sm_supported(iommu) || (rtaddr & DMA_RTADDR_SMT)) {
		pr_err("%s: scalable mode: translations are not taken over\n",
		       iommu->name);
		return -EOPNOTSUPP;
	}
	if ((rtaddr & VTD_PAGE_MASK) != root) {
		pr_err("%s: the root table is not the one handed over\n",
		       iommu->name);
		return -EINVAL;
	}
	err = lu_take_old_table(iommu, root);
	if (err) {
		pr_err("%s: the root table is not preserved memory\n",
		       iommu->name);
		return err;
	}

	iommu->copied_tables = bitmap_zalloc(BIT_ULL(16), GFP_KERNEL);
	fdt_for_each_subnode(dev, lu_in_fdt, node)
		nr_devs++;
	adopted = kcalloc(nr_devs ?: 1, sizeof(*adopted), GFP_KERNEL);
	if (!iommu->copied_tables || !adopted) {
		kfree(adopted);
		return -ENOMEM;
	}

	fdt_for_each_subnode(dev, lu_in_fdt, node) {
		err = lu_adopt_dev(iommu, dev, phys_to_virt(root), adopted,
				   &nr_adopted);
		if (err) {
			pr_err("%s: %s: not taken over (%d): its DMA is blocked\n",
			       iommu->name,
			       fdt_get_name(lu_in_fdt, dev, NULL) ?: "?", err);
			continue;
		}
		nr_ok++;
	}
	kfree(adopted);
	pr_info("%s: took over the translation of %u of %u device(s)\n",
		iommu->name, nr_ok, nr_devs);
	return 0;
}

/**
 * intel_iommu_lu_release - free the old tables of a unit
 * @iommu: the unit, whose new root table the hardware now uses
 */
void __init intel_iommu_lu_release(struct intel_iommu *iommu)
{
	struct lu_old_table *t, *tmp;

	list_for_each_entry_safe(t, tmp, &lu_old_tables, link) {
		if (t->iommu != iommu)
			continue;
		list_del(&t->link);
		__free_page(pfn_to_page(PHYS_PFN(t->phys)));
		kfree(t);
	}
}

/* What the tables map @iova to; a walk that allocates nothing */
static phys_addr_t lu_pkernfs_iova_to_phys(struct iommu_domain *domain,
					   dma_addr_t iova)
{
	struct dmar_domain *dmar_domain = to_dmar_domain(domain);
	int level = agaw_to_level(dmar_domain->agaw);
	struct dma_pte *table = dmar_domain->pgd, *pte;

	if (iova > dmar_domain->max_addr)
		return 0;
	for (;; level--) {
		pte = &table[pfn_level_offset(iova >> VTD_PAGE_SHIFT, level)];
		if (!dma_pte_present(pte))
			return 0;
		if (level == 1 || dma_pte_superpage(pte))
			return dma_pte_addr(pte) +
			       (iova & (level_size(level) * VTD_PAGE_SIZE - 1));
		table = phys_to_virt(dma_pte_addr(pte));
	}
}

/* Is @info a device taken over into @pk, not yet attached? */
static struct intel_lu_in_dev *lu_in_dev_find(struct device_domain_info *info)
{
	struct intel_lu_in_dev *d;

	lockdep_assert_held(&lu_in_lock);
	list_for_each_entry(d, &lu_in_devs, link)
		if (d->iommu == info->iommu &&
		    d->sid == PCI_DEVID(info->bus, info->devfn))
			return d;
	return NULL;
}

/*
 * Attach a device taken over at boot, whose context entry already points
 * at these tables with this domain ID: the entry is left as it is, and
 * the device's DMA goes on untouched. Any other device is refused.
 */
static int lu_pkernfs_attach(struct iommu_domain *domain, struct device *dev)
{
	struct device_domain_info *info = dev_iommu_priv_get(dev);
	struct intel_lu_pkernfs *pk = to_lu_pkernfs(domain);
	struct intel_iommu *iommu = info->iommu;
	struct intel_lu_in_dev *d;
	unsigned long flags;
	int ret;

	/* Back into it, as the core does after a failed replace */
	if (info->domain == &pk->domain && info->domain_attached)
		return 0;

	mutex_lock(&lu_in_lock);
	d = lu_in_dev_find(info);
	if (!d || d->pk != pk || info->domain_attached ||
	    !context_copied(iommu, info->bus, info->devfn)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	/* Takes a reference to the ID the domain holds */
	ret = domain_attach_iommu(&pk->domain, iommu);
	if (ret)
		goto out_unlock;
	info->domain = &pk->domain;
	info->domain_attached = true;
	spin_lock_irqsave(&pk->domain.lock, flags);
	list_add(&info->link, &pk->domain.devices);
	spin_unlock_irqrestore(&pk->domain.lock, flags);
	ret = cache_tag_assign_domain(&pk->domain, dev, IOMMU_NO_PASID);
	if (ret) {
		spin_lock_irqsave(&pk->domain.lock, flags);
		list_del(&info->link);
		spin_unlock_irqrestore(&pk->domain.lock, flags);
		info->domain = NULL;
		info->domain_attached = false;
		domain_detach_iommu(&pk->domain, iommu);
		goto out_unlock;
	}
	/*
	 * The entry is this kernel's now: attaching another domain clears
	 * it and flushes the caches under this domain ID, as for any domain.
	 */
	clear_context_copied(iommu, info->bus, info->devfn);
	list_del(&d->link);
	kfree(d);
out_unlock:
	mutex_unlock(&lu_in_lock);
	return ret;
}

/*
 * A device taken over but never attached to its domain: its copied entry
 * goes, and with it its DMA, before the domain can go.
 */
static void lu_in_dev_block(struct intel_lu_in_dev *d)
{
	struct intel_iommu *iommu = d->iommu;
	u8 bus = PCI_BUS_NUM(d->sid), devfn = d->sid & 0xff;
	struct context_entry *ce;

	lockdep_assert_held(&lu_in_lock);
	spin_lock(&iommu->lock);
	ce = iommu_context_addr(iommu, bus, devfn, 0);
	if (ce && context_copied(iommu, bus, devfn)) {
		context_clear_entry(ce);
		__iommu_flush_cache(iommu, ce, sizeof(*ce));
		clear_context_copied(iommu, bus, devfn);
	}
	spin_unlock(&iommu->lock);
	iommu->flush.flush_context(iommu, d->pk->did, d->sid,
				   DMA_CCMD_MASK_NOBIT, DMA_CCMD_DEVICE_INVL);
	iommu->flush.flush_iotlb(iommu, d->pk->did, 0, 0, DMA_TLB_DSI_FLUSH);
	pr_err("%s: %02x:%02x.%d: not put in the domain handed over as %#llx: its DMA is blocked\n",
	       iommu->name, bus, PCI_SLOT(devfn), PCI_FUNC(devfn),
	       d->pk->domain.domain.lu_token);
	list_del(&d->link);
	kfree(d);
}

/* No device in it any more: give its ID and its table pages back */
static void lu_pkernfs_free(struct iommu_domain *domain)
{
	struct intel_lu_pkernfs *pk = to_lu_pkernfs(domain);
	struct intel_iommu *iommu = pk->iommu;
	struct intel_lu_in_dev *d, *tmp;
	unsigned int i;

	mutex_lock(&lu_probe_lock);
	if (WARN_ON(!list_empty(&pk->domain.devices))) {
		mutex_unlock(&lu_probe_lock);
		return;
	}
	mutex_lock(&lu_in_lock);
	list_for_each_entry_safe(d, tmp, &lu_in_devs, link)
		if (d->pk == pk)
			lu_in_dev_block(d);
	mutex_unlock(&lu_in_lock);
	mutex_unlock(&lu_probe_lock);

	/* Nothing translates through the tables or with the ID any more */
	iommu->flush.flush_iotlb(iommu, pk->did, 0, 0, DMA_TLB_DSI_FLUSH);
	domain_detach_iommu(&pk->domain, iommu);
	for (i = 0; i < pk->nr_pages; i++)
		__free_page(pfn_to_page(PHYS_PFN(pk->pages[i])));
	pr_info("%s: freed the %u page-table page(s) of the domain handed over as %#llx\n",
		iommu->name, pk->nr_pages, domain->lu_token);
	kfree(pk->domain.qi_batch);
	kfree(pk);
}

static const struct iommu_domain_ops lu_pkernfs_ops = {
	.attach_dev	= lu_pkernfs_attach,
	.iova_to_phys	= lu_pkernfs_iova_to_phys,
	.free		= lu_pkernfs_free,
};

static int lu_count_dev(struct device *dev, void *data)
{
	(*(unsigned int *)data)++;
	return 0;
}

/**
 * intel_iommu_lu_probe - put a device taken over at boot in its domain
 * @dev: a device just probed
 *
 * A device whose translation was taken over from the previous kernel goes
 * into the IOMMU_DOMAIN_PKERNFS domain of its handed-over tables, with no
 * other domain in between, and the domain is offered to its owner
 * (iommufd), which takes the device over. A device that cannot be put
 * there (a group of several devices, the domain claimed already, no
 * memory) has its copied context entry cleared: its DMA is blocked, never
 * let through another domain.
 */
void intel_iommu_lu_probe(struct device *dev)
{
	struct device_domain_info *info = dev_iommu_priv_get(dev);
	struct iommu_domain *domain = NULL;
	struct intel_lu_in_dev *d;
	unsigned int nr = 0;
	int ret;

	if (!info || list_empty_careful(&lu_in_devs))
		return;
	mutex_lock(&lu_probe_lock);
	mutex_lock(&lu_in_lock);
	d = lu_in_dev_find(info);
	if (d)
		domain = &d->pk->domain.domain;
	mutex_unlock(&lu_in_lock);
	if (!domain)
		goto out_unlock;

	iommu_group_for_each_dev(dev->iommu_group, &nr, lu_count_dev);
	ret = nr == 1 ? iommu_lu_add_inherited(domain) : -EOPNOTSUPP;
	if (!ret) {
		/* The attach takes the device off lu_in_devs */
		ret = iommu_group_adopt_pkernfs_domain(dev->iommu_group,
						       domain);
		if (ret)
			iommu_lu_put_inherited(domain);
	}
	if (ret) {
		dev_err(dev, "cannot be put in the domain handed over as %#llx: %d\n",
			domain->lu_token, ret);
		mutex_lock(&lu_in_lock);
		d = lu_in_dev_find(info);
		if (d)
			lu_in_dev_block(d);
		mutex_unlock(&lu_in_lock);
		goto out_unlock;
	}
	dev_info(dev, "DMA goes on through the domain handed over as %#llx\n",
		 domain->lu_token);
out_unlock:
	mutex_unlock(&lu_probe_lock);
}
