// SPDX-License-Identifier: GPL-2.0
/*
 * Persistent IOMMU domains for live update.
 *
 * Before a live update (kexec with kexec handover) the VMM marks a paging
 * HWPT for preservation under a token of its choosing
 * (IOMMU_HWPT_LU_SET_PRESERVE). From then on the HWPT's IOAS cannot change,
 * and every mapping in it is a guestmemfs range, whose memory survives the
 * update. The devices attached to the HWPT keep their translation through
 * the update, in an IOMMU_DOMAIN_PKERNFS domain made of the HWPT's page
 * tables, which the IOMMU driver puts them in at probe.
 *
 * After the update, what iommufd knows of such a domain is a "restored
 * domain": its token, the domain, and the areas it maps (IOVA, length,
 * permissions and the guestmemfs range behind each, pinned so that nothing
 * can free memory a device may still reach). Binding a device that is in
 * the domain makes a HWPT of it in the binding iommufd, which
 * IOMMU_HWPT_LU_RESTORE returns by token. The VMM then rebuilds an IOAS and
 * a paging HWPT, and attaching the device to that replaces the inherited
 * domain atomically, once the new HWPT is known to map every IOVA the old
 * domain maps, to the same memory, with at least its permissions.
 * Destroying the inherited HWPT once no device uses it frees the domain's
 * page tables and releases the memory.
 */

#include <linux/device.h>
#include <linux/guestmemfs.h>
#include <linux/iommu.h>
#include <linux/iommufd.h>
#include <linux/kexec_handover.h>
#include <linux/notifier.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <uapi/linux/iommufd.h>

#include "io_pagetable.h"
#include "iommufd_private.h"

/* Marked HWPTs, by token: a token names one HWPT of the whole system */
static DEFINE_XARRAY(lu_marked);
/* Restored domains, by token */
static DEFINE_XARRAY(lu_restored);
/* Serializes marking, restoring and freeing against each other */
static DEFINE_MUTEX(lu_lock);
/* The handover is finalized: markings are handed over as they are */
static bool lu_finalized;
/* What iommufd handed over of them (lu_handover.c), until abort */
static struct folio *lu_handover;
/*
 * Attaches, replaces, detaches and the decision to keep a device hold it
 * for read, finalize and abort for write: a device is attached where it
 * was when its HWPT was handed over. Outside lu_lock.
 */
static DECLARE_RWSEM(lu_attach_sem);
/*
 * Devices kept for the handover and unbound by their driver, left in the
 * HWPT handed over until the kexec (iommufd_lu_park()); and, once the
 * handover is aborted, those lu_unpark_work is to detach and unbind.
 * Under lu_lock.
 */
static LIST_HEAD(lu_parked);
static LIST_HEAD(lu_unparking);
static void lu_unpark_fn(struct work_struct *work);
static DECLARE_WORK(lu_unpark_work, lu_unpark_fn);
/*
 * Held by lu_unpark_work from taking a device off lu_unparking until its
 * unbind returns, and by whoever must not miss a parked device meanwhile
 * (its removal, a new bind): they wait for it to be unbound, or parked
 * again. Taken before lu_attach_sem and lu_lock.
 */
static DEFINE_MUTEX(lu_unpark_mutex);

/*
 * Every mapping of the IOAS is guestmemfs memory, which survives an update,
 * in whole pages, which a page table hands over as it is.
 */
static bool lu_ioas_preservable(struct io_pagetable *iopt)
{
	struct iopt_area *area;

	lockdep_assert_held(&iopt->iova_rwsem);
	for (area = iopt_area_iter_first(iopt, 0, ULONG_MAX); area;
	     area = iopt_area_iter_next(area, 0, ULONG_MAX))
		if (!area->pages || area->pages->type != IOPT_ADDRESS_GMFS ||
		    area->page_offset || !PAGE_ALIGNED(iopt_area_iova(area)) ||
		    !PAGE_ALIGNED(iopt_area_length(area)))
			return false;
	return true;
}

static void lu_unmark_locked(struct iommufd_hwpt_paging *hwpt_paging)
{
	struct io_pagetable *iopt = &hwpt_paging->ioas->iopt;

	lockdep_assert_held(&lu_lock);
	xa_erase(&lu_marked, hwpt_paging->lu_token);
	hwpt_paging->lu_marked = false;
	down_write(&iopt->iova_rwsem);
	iopt->lu_frozen--;
	up_write(&iopt->iova_rwsem);
}

static int lu_mark(struct iommufd_hwpt_paging *hwpt_paging, u64 token)
{
	struct io_pagetable *iopt = &hwpt_paging->ioas->iopt;
	int rc;

	lockdep_assert_held(&lu_lock);
	if (hwpt_paging->lu_marked && hwpt_paging->lu_token == token)
		return 0;

	/*
	 * An unmap in progress drops the iova_rwsem between areas but holds
	 * the domains_rwsem throughout, as a map filling its domains does:
	 * taking both, the IOAS is seen between operations, never halfway.
	 */
	down_write(&iopt->domains_rwsem);
	down_write(&iopt->iova_rwsem);
	if (!lu_ioas_preservable(iopt)) {
		rc = -EINVAL;
		goto out_unlock;
	}
	rc = xa_insert(&lu_marked, token, hwpt_paging, GFP_KERNEL);
	if (rc) {
		rc = rc == -EBUSY ? -EADDRINUSE : rc;
		goto out_unlock;
	}
	if (hwpt_paging->lu_marked)
		xa_erase(&lu_marked, hwpt_paging->lu_token);
	else
		iopt->lu_frozen++;
	hwpt_paging->lu_marked = true;
	hwpt_paging->lu_token = token;
out_unlock:
	up_write(&iopt->iova_rwsem);
	up_write(&iopt->domains_rwsem);
	return rc;
}

/**
 * iommufd_hwpt_lu_set_preserve - ioctl(IOMMU_HWPT_LU_SET_PRESERVE)
 * @ucmd: the command
 *
 * Return: 0, or -EINVAL for a HWPT that is not a paging one, an IOAS with
 * a mapping that is not guestmemfs memory, or a token given to unmark;
 * -EADDRINUSE for a token another HWPT is marked with; -EOPNOTSUPP for
 * unknown flags or a nesting parent; -EOVERFLOW for a token wider than
 * unsigned long; -EBUSY while the kexec handover is finalized.
 */
int iommufd_hwpt_lu_set_preserve(struct iommufd_ucmd *ucmd)
{
	struct iommu_hwpt_lu_set_preserve *cmd = ucmd->cmd;
	struct iommufd_hwpt_paging *hwpt_paging;
	struct iommufd_object *obj;
	int rc;

	if ((cmd->flags & ~IOMMU_HWPT_LU_UNMARK) || cmd->__reserved)
		return -EOPNOTSUPP;
	/* Tokens index an xarray: all 64 bits of them, or none */
	if (cmd->hwpt_token != (unsigned long)cmd->hwpt_token)
		return -EOVERFLOW;
	if ((cmd->flags & IOMMU_HWPT_LU_UNMARK) && cmd->hwpt_token)
		return -EINVAL;

	obj = iommufd_get_object(ucmd->ictx, cmd->hwpt_id, IOMMUFD_OBJ_ANY);
	if (IS_ERR(obj))
		return PTR_ERR(obj);
	if (obj->type != IOMMUFD_OBJ_HWPT_PAGING) {
		rc = -EINVAL;
		goto out_put;
	}
	hwpt_paging = container_of(obj, struct iommufd_hwpt_paging,
				   common.obj);
	/* What a nested domain translates through is not handed over */
	if (hwpt_paging->nest_parent) {
		rc = -EOPNOTSUPP;
		goto out_put;
	}

	mutex_lock(&lu_lock);
	if (lu_finalized) {
		rc = -EBUSY;
	} else if (!(cmd->flags & IOMMU_HWPT_LU_UNMARK)) {
		rc = lu_mark(hwpt_paging, cmd->hwpt_token);
	} else if (hwpt_paging->lu_marked) {
		lu_unmark_locked(hwpt_paging);
		rc = 0;
	} else {
		rc = -EINVAL;
	}
	mutex_unlock(&lu_lock);
out_put:
	iommufd_put_object(ucmd->ictx, obj);
	return rc;
}

/**
 * iommufd_hwpt_lu_destroy - forget the marking of a HWPT that goes away
 * @hwpt_paging: the HWPT, being destroyed
 */
void iommufd_hwpt_lu_destroy(struct iommufd_hwpt_paging *hwpt_paging)
{
	/*
	 * Nothing can mark it any more: IOMMU_HWPT_LU_SET_PRESERVE holds a
	 * reference on it while it runs.
	 */
	if (!hwpt_paging->lu_marked)
		return;
	mutex_lock(&lu_lock);
	if (hwpt_paging->lu_marked)
		lu_unmark_locked(hwpt_paging);
	/* The IOMMU driver sees its domain freed, and drops its devices */
	hwpt_paging->lu_preserved = false;
	mutex_unlock(&lu_lock);
}

static void lu_domain_free(struct iommufd_lu_domain *lu)
{
	unsigned int i;

	for (i = 0; i < lu->nr_areas; i++)
		if (lu->areas[i].pin)
			guestmemfs_unpin(lu->areas[i].pin);
	if (lu->domain)
		iommu_domain_free(lu->domain);
	kfree(lu);
}

/**
 * iommufd_lu_domain_alloc - a record of a restored domain, to be filled
 * @nr_areas: the number of areas the domain maps
 *
 * Return: the record, all zero but for @nr_areas, or NULL.
 */
struct iommufd_lu_domain *iommufd_lu_domain_alloc(unsigned int nr_areas)
{
	struct iommufd_lu_domain *lu;

	lu = kzalloc(struct_size(lu, areas, nr_areas), GFP_KERNEL_ACCOUNT);
	if (lu)
		lu->nr_areas = nr_areas;
	return lu;
}

/**
 * iommufd_lu_domain_discard - free a record that was not added
 * @lu: the record; its pins are released and its domain freed
 */
void iommufd_lu_domain_discard(struct iommufd_lu_domain *lu)
{
	lu_domain_free(lu);
}

/**
 * iommufd_lu_add_restored - make a restored domain known
 * @lu: the record: token, IOMMU_DOMAIN_PKERNFS domain, areas with their
 *	guestmemfs pins, and how many groups are in the domain
 *
 * From now on iommufd owns @lu: binding a device of a group that is in the
 * domain makes a HWPT of it; the record is freed, and the domain with it,
 * once that HWPT is destroyed and no group is in the domain any more.
 *
 * Return: 0, or -EADDRINUSE if a restored domain has the token already.
 */
int iommufd_lu_add_restored(struct iommufd_lu_domain *lu)
{
	int rc;

	if (WARN_ON(lu->domain->type != IOMMU_DOMAIN_PKERNFS ||
		    lu->domain->lu_token != lu->token))
		return -EINVAL;
	mutex_lock(&lu_lock);
	rc = xa_insert(&lu_restored, lu->token, lu, GFP_KERNEL);
	mutex_unlock(&lu_lock);
	return rc == -EBUSY ? -EADDRINUSE : rc;
}

/* Free a restored domain nothing uses: no HWPT, no group */
static void lu_put_locked(struct iommufd_lu_domain *lu)
{
	lockdep_assert_held(&lu_lock);
	if (lu->hwpt || atomic_read(&lu->nr_groups))
		return;
	xa_erase(&lu_restored, lu->token);
	lu_domain_free(lu);
}

void iommufd_hwpt_pkernfs_destroy(struct iommufd_object *obj)
{
	struct iommufd_hwpt_pkernfs *hwpt =
		container_of(obj, struct iommufd_hwpt_pkernfs, common.obj);

	mutex_lock(&lu_lock);
	hwpt->lu->hwpt = NULL;
	lu_put_locked(hwpt->lu);
	mutex_unlock(&lu_lock);
}

/**
 * iommufd_lu_adopt - take over a device found in an inherited domain
 * @idev: the device, just bound
 *
 * If the device's group is in an IOMMU_DOMAIN_PKERNFS domain, attach the
 * device to the HWPT of that domain in its iommufd, made now if it is the
 * first device of the domain there. The group stays in the domain: there
 * is nothing to attach.
 *
 * Return: 0, -EBUSY if the domain is unknown to iommufd or its HWPT is in
 * another iommufd, -ENOMEM.
 */
int iommufd_lu_adopt(struct iommufd_device *idev)
{
	struct iommufd_group *igroup = idev->igroup;
	struct iommufd_hwpt_pkernfs *hwpt;
	struct iommufd_lu_domain *lu;
	struct iommu_domain *domain;
	u64 token;
	int rc = 0;

	/*
	 * Under lu_lock, the domain cannot be freed if it is one of ours;
	 * and it is only compared with ours, never dereferenced.
	 */
	mutex_lock(&lu_lock);
	domain = iommu_group_pkernfs_domain(igroup->group, &token);
	if (!domain)
		goto out_unlock;
	lu = xa_load(&lu_restored, token);
	if (!lu || lu->domain != domain || lu->broken) {
		rc = -EBUSY;
		goto out_unlock;
	}

	mutex_lock(&igroup->lock);
	/*
	 * One device per group: a second device of the group would be in
	 * the domain without being attached to anything in its own eyes.
	 */
	if (igroup->hwpt) {
		rc = -EBUSY;
		goto out_unlock_group;
	}
	if (lu->hwpt) {
		/* Only one iommufd at a time takes a domain over */
		if (lu->hwpt->ictx != idev->ictx) {
			rc = -EBUSY;
			goto out_unlock_group;
		}
		hwpt = lu->hwpt;
		/*
		 * No users left: it is being destroyed, and its destroy
		 * waits for lu_lock to forget it. Try again later.
		 */
		if (!refcount_inc_not_zero(&hwpt->common.obj.users)) {
			rc = -EBUSY;
			goto out_unlock_group;
		}
	} else {
		hwpt = __iommufd_object_alloc(idev->ictx, hwpt,
					      IOMMUFD_OBJ_HWPT_PKERNFS,
					      common.obj);
		if (IS_ERR(hwpt)) {
			rc = PTR_ERR(hwpt);
			goto out_unlock_group;
		}
		hwpt->common.domain = domain;
		hwpt->lu = lu;
		hwpt->ictx = idev->ictx;
		lu->hwpt = hwpt;
		/*
		 * The device's reference, taken before the object can be
		 * found: IOMMU_DESTROY must never see it unused.
		 */
		refcount_inc(&hwpt->common.obj.users);
		iommufd_object_finalize(idev->ictx, &hwpt->common.obj);
	}
	igroup->hwpt = &hwpt->common;
	list_add_tail(&idev->group_item, &igroup->device_list);
	idev->lu_adopted = true;
out_unlock_group:
	mutex_unlock(&igroup->lock);
out_unlock:
	mutex_unlock(&lu_lock);
	return rc;
}

/**
 * iommufd_lu_unadopt - let a device still in its inherited domain go
 * @idev: the device, being unbound, attached to nothing else
 *
 * The group stays in the domain, for the next iommufd to take over.
 */
void iommufd_lu_unadopt(struct iommufd_device *idev)
{
	struct iommufd_group *igroup = idev->igroup;
	struct iommufd_hw_pagetable *hwpt;

	mutex_lock(&igroup->lock);
	hwpt = igroup->hwpt;
	if (!idev->lu_adopted || !hwpt ||
	    hwpt->obj.type != IOMMUFD_OBJ_HWPT_PKERNFS) {
		mutex_unlock(&igroup->lock);
		return;
	}
	list_del(&idev->group_item);
	if (list_empty(&igroup->device_list))
		igroup->hwpt = NULL;
	idev->lu_adopted = false;
	mutex_unlock(&igroup->lock);
	refcount_dec(&hwpt->obj.users);
}

/**
 * iommufd_lu_replaced - a group left its inherited domain for another
 * @hwpt: the inherited domain's HWPT
 *
 * Called under the group's lock: the HWPT, which holds the record, is
 * still there, and frees it when it goes if no group is left.
 */
void iommufd_lu_replaced(struct iommufd_hw_pagetable *hwpt)
{
	struct iommufd_hwpt_pkernfs *pk =
		container_of(hwpt, struct iommufd_hwpt_pkernfs, common);

	WARN_ON(atomic_dec_return(&pk->lu->nr_groups) < 0);
}

/**
 * iommufd_lu_group_gone - a group in an inherited domain went away
 * @token: the domain's token
 *
 * For a device removed while its group was still in the domain, whose
 * record then goes too if no HWPT holds it.
 */
void iommufd_lu_group_gone(u64 token)
{
	struct iommufd_lu_domain *lu;

	mutex_lock(&lu_lock);
	lu = xa_load(&lu_restored, token);
	if (lu && !WARN_ON(atomic_dec_return(&lu->nr_groups) < 0))
		lu_put_locked(lu);
	mutex_unlock(&lu_lock);
}

/*
 * Does @iopt, with @domain, map [iova, iova + length) to the memory of @pin
 * from its start, with at least @prot? Walks the areas of the IOAS over the
 * range, and the runs of the pin.
 */
static int lu_check_area(struct io_pagetable *iopt,
			 struct iommu_domain *domain, unsigned long iova,
			 unsigned long length, int prot,
			 struct guestmemfs_pin *pin)
{
	unsigned long last = iova + length - 1, cur;
	struct iopt_area_contig_iter iter;
	struct iopt_area *area;

	lockdep_assert_held(&iopt->iova_rwsem);
	iopt_for_each_contig_area(&iter, area, iopt, iova, last) {
		unsigned long end = min(last, iopt_area_last_iova(area));

		if ((area->iommu_prot & prot) != prot)
			return -EINVAL;
		/*
		 * Only guestmemfs memory can be the same memory: anything
		 * else mapped there is other memory. An area without pages
		 * is being unmapped.
		 */
		if (!area->pages || area->pages->type != IOPT_ADDRESS_GMFS)
			return -EINVAL;
		for (cur = iter.cur_iova; cur <= end;) {
			const struct guestmemfs_run *run;
			unsigned long n;
			phys_addr_t want;

			run = guestmemfs_pin_run(pin, cur - iova);
			if (!run)
				return -EINVAL;
			want = run->phys + (cur - iova - run->offset);
			n = min_t(unsigned long, end - cur + 1,
				  run->len - (cur - iova - run->offset));
			/*
			 * A run is contiguous memory, and an area of a
			 * guestmemfs pin maps its runs linearly, each block
			 * from its one owner: if the first and last page of
			 * the run's span are where they should be, so is
			 * every page between.
			 */
			if (iommu_iova_to_phys(domain, cur) != want ||
			    iommu_iova_to_phys(domain, cur + n - PAGE_SIZE) !=
				    want + n - PAGE_SIZE)
				return -EINVAL;
			cur += n;
			cond_resched();
		}
	}
	return iopt_area_contig_done(&iter) ? 0 : -EINVAL;
}

/**
 * iommufd_lu_check_replace - may an inherited domain be replaced by a HWPT?
 * @old: the inherited domain's HWPT
 * @new: the HWPT that would replace it
 *
 * The device's DMA goes on through the switch: @new must be a paging HWPT
 * that maps every IOVA the inherited domain maps, to the same memory, with
 * at least its permissions. Checked against the areas the domain was
 * preserved with, and @new's own page table.
 *
 * On success the IOAS of @new cannot change until iommufd_lu_check_done():
 * what was checked is what the device gets.
 *
 * Return: 0, or -EINVAL.
 */
int iommufd_lu_check_replace(struct iommufd_hw_pagetable *old,
			     struct iommufd_hw_pagetable *new)
{
	struct iommufd_hwpt_pkernfs *pk =
		container_of(old, struct iommufd_hwpt_pkernfs, common);
	struct iommufd_lu_domain *lu = pk->lu;
	struct io_pagetable *iopt;
	unsigned int i;
	int rc = 0;

	if (new->obj.type != IOMMUFD_OBJ_HWPT_PAGING)
		return -EINVAL;
	iopt = &to_hwpt_paging(new)->ioas->iopt;
	down_read(&iopt->iova_rwsem);
	for (i = 0; !rc && i < lu->nr_areas; i++)
		rc = lu_check_area(iopt, new->domain, lu->areas[i].iova,
				   lu->areas[i].length, lu->areas[i].prot,
				   lu->areas[i].pin);
	if (rc)
		up_read(&iopt->iova_rwsem);
	return rc;
}

/**
 * iommufd_lu_check_done - the replace checked by iommufd_lu_check_replace()
 *			   is over, done or failed
 * @new: the HWPT that was checked
 */
void iommufd_lu_check_done(struct iommufd_hw_pagetable *new)
{
	up_read(&to_hwpt_paging(new)->ioas->iopt.iova_rwsem);
}

/**
 * iommufd_hwpt_lu_restore - ioctl(IOMMU_HWPT_LU_RESTORE)
 * @ucmd: the command
 *
 * Return: 0, or -ENOENT if no device bound to this iommufd is in a domain
 * preserved with the token.
 */
int iommufd_hwpt_lu_restore(struct iommufd_ucmd *ucmd)
{
	struct iommu_hwpt_lu_restore *cmd = ucmd->cmd;
	struct iommufd_lu_domain *lu;
	int rc = -ENOENT;

	if (cmd->flags || cmd->__reserved)
		return -EOPNOTSUPP;

	mutex_lock(&lu_lock);
	lu = xa_load(&lu_restored, cmd->hwpt_token);
	if (lu && lu->hwpt && lu->hwpt->ictx == ucmd->ictx) {
		cmd->out_hwpt_id = lu->hwpt->common.obj.id;
		rc = 0;
	}
	mutex_unlock(&lu_lock);
	if (rc)
		return rc;
	return iommufd_ucmd_respond(ucmd, sizeof(*cmd));
}

static bool lu_hwpt_preserved(struct iommufd_hw_pagetable *hwpt)
{
	return hwpt && hwpt->obj.type == IOMMUFD_OBJ_HWPT_PAGING &&
	       READ_ONCE(to_hwpt_paging(hwpt)->lu_preserved);
}

/**
 * iommufd_lu_attach_lock - keep the handover from being finalized
 *
 * Around an attach, replace or detach, or the decision to keep a device
 * for the handover, which then see what finalize handed over.
 */
void iommufd_lu_attach_lock(void)
{
	down_read(&lu_attach_sem);
}

/**
 * iommufd_lu_attach_unlock - undo iommufd_lu_attach_lock()
 */
void iommufd_lu_attach_unlock(void)
{
	up_read(&lu_attach_sem);
}

/**
 * iommufd_lu_attach_frozen - may a device not be attached to a HWPT?
 * @idev: the device
 * @hwpt: the HWPT it would be attached to
 *
 * Once the handover is finalized, a device whose HWPT is handed over stays
 * in it, and no device joins such a HWPT: what the next kernel gets is
 * what was handed over. Called under iommufd_lu_attach_lock(). (Nor is
 * the device detached: see iommufd_device_try_detach() and
 * iommufd_device_lu_park_begin().)
 *
 * Return: true if the attach must fail with -EBUSY.
 */
bool iommufd_lu_attach_frozen(struct iommufd_device *idev,
			      struct iommufd_hw_pagetable *hwpt)
{
	bool frozen;

	if (lu_hwpt_preserved(hwpt))
		return true;
	mutex_lock(&idev->igroup->lock);
	frozen = lu_hwpt_preserved(idev->igroup->hwpt);
	mutex_unlock(&idev->igroup->lock);
	return frozen;
}

/**
 * iommufd_lu_detach_frozen - does the handover keep a device attached?
 * @idev: the device
 *
 * Called under iommufd_lu_attach_lock().
 *
 * Return: true if @idev is attached to a HWPT the finalized handover hands
 * over: the device stays in it until the kexec.
 */
bool iommufd_lu_detach_frozen(struct iommufd_device *idev)
{
	struct iommufd_group *igroup = idev->igroup;
	struct iommufd_device *cur;
	bool frozen = false;

	/* A mock device goes with its test object: it cannot stay */
	if (iommufd_selftest_is_mock_dev(idev->dev))
		return false;
	mutex_lock(&igroup->lock);
	if (lu_hwpt_preserved(igroup->hwpt))
		list_for_each_entry(cur, &igroup->device_list, group_item)
			frozen |= cur == idev;
	mutex_unlock(&igroup->lock);
	return frozen;
}

/**
 * iommufd_lu_park - keep a device in the HWPT handed over until the kexec
 * @idev: a device kept for the handover (iommufd_device_lu_park_begin()),
 *	  which its driver unbinds
 *
 * The device stays bound to its iommufd context, attached, and owned for
 * DMA (no other driver or iommufd can take it). Its reference on the
 * context keeps the context's objects (the HWPT, its IOAS and the IOAS's
 * pins of what the HWPT maps) alive after the file is closed. The kexec
 * ends it all; an abort of the handover, or the removal of the device,
 * detaches and unbinds it (iommufd_device_lu_unpark()). Called by the
 * driver's unbind (for vfio, under its dev_set lock, as its binds are:
 * see iommufd_lu_dev_parked()), from no iommufd lock.
 *
 * Return: true if the device is parked, false if the handover no longer
 * hands its HWPT over (it was aborted since): the caller unparks it.
 */
bool iommufd_lu_park(struct iommufd_device *idev)
{
	bool park;

	iommufd_lu_attach_lock();
	park = iommufd_lu_detach_frozen(idev);
	if (park) {
		get_device(idev->dev);
		mutex_lock(&lu_lock);
		list_add_tail(&idev->lu_park_item, &lu_parked);
		mutex_unlock(&lu_lock);
	}
	iommufd_lu_attach_unlock();
	if (park)
		dev_info(idev->dev,
			 "iommufd: live update: unbound after finalize, kept in the HWPT handed over until the kexec\n");
	return park;
}

/* Under lu_lock: the parked or unparking iommufd_device of @dev, if any */
static struct iommufd_device *lu_find_parked(struct device *dev)
{
	struct iommufd_device *idev;

	lockdep_assert_held(&lu_lock);
	list_for_each_entry(idev, &lu_parked, lu_park_item)
		if (idev->dev == dev)
			return idev;
	list_for_each_entry(idev, &lu_unparking, lu_park_item)
		if (idev->dev == dev)
			return idev;
	return NULL;
}

/* After an abort: detach and unbind the devices parked until the kexec */
static void lu_unpark_fn(struct work_struct *work)
{
	struct iommufd_device *idev;
	struct device *dev;
	bool parked;

	for (;;) {
		mutex_lock(&lu_unpark_mutex);
		mutex_lock(&lu_lock);
		idev = list_first_entry_or_null(&lu_unparking,
						struct iommufd_device,
						lu_park_item);
		if (idev)
			list_del_init(&idev->lu_park_item);
		mutex_unlock(&lu_lock);
		if (!idev) {
			mutex_unlock(&lu_unpark_mutex);
			return;
		}
		dev = idev->dev;
		/* Parked again if a new handover hands its HWPT over */
		iommufd_device_unbind(idev);
		mutex_lock(&lu_lock);
		parked = lu_find_parked(dev);
		mutex_unlock(&lu_lock);
		mutex_unlock(&lu_unpark_mutex);
		if (!parked)
			dev_info(dev,
				 "iommufd: live update: handover aborted: the device its VMM closed was detached and unbound\n");
		put_device(dev);
	}
}

/**
 * iommufd_lu_dev_parked - is a device kept for the handover, unbound?
 * @dev: a device about to be bound to an iommufd context
 *
 * A device its VMM closed after finalize stays bound to that VMM's
 * context, and owned by it (iommufd_lu_park()), until the kexec or an
 * abort. It cannot be bound again meanwhile, not even to that context,
 * which DMA ownership would allow: its new user's driver would reset it
 * and stop the DMA the handover carries. An unbind that an abort started
 * is waited for. For vfio, binds and the unbinds that park are serialized
 * by its dev_set lock.
 *
 * Return: true if @dev is parked (the bind must fail with -EBUSY).
 */
bool iommufd_lu_dev_parked(struct device *dev)
{
	bool parked;

	mutex_lock(&lu_unpark_mutex);
	mutex_lock(&lu_lock);
	parked = lu_find_parked(dev);
	mutex_unlock(&lu_lock);
	mutex_unlock(&lu_unpark_mutex);
	return parked;
}

#ifdef CONFIG_PCI
/*
 * A parked device going away: unpark it first, while its IOMMU group is
 * still there. (Its handover fails: the IOMMU driver finds it gone.)
 * Devices kept for a handover are PCI devices (the IOMMU drivers' rule).
 */
static int lu_bus_notify(struct notifier_block *nb, unsigned long action,
			 void *data)
{
	struct iommufd_device *found;
	struct device *dev = data;

	if (action != BUS_NOTIFY_DEL_DEVICE)
		return NOTIFY_DONE;
	/* An unbind lu_unpark_work runs for it ends first */
	mutex_lock(&lu_unpark_mutex);
	mutex_lock(&lu_lock);
	found = lu_find_parked(dev);
	if (found)
		list_del_init(&found->lu_park_item);
	mutex_unlock(&lu_lock);
	if (found) {
		dev_warn(dev,
			 "iommufd: live update: removed while kept for the handover: detached, not handed over\n");
		iommufd_device_lu_unpark(found);
	}
	mutex_unlock(&lu_unpark_mutex);
	if (!found)
		return NOTIFY_DONE;
	put_device(dev);
	return NOTIFY_OK;
}

static struct notifier_block lu_bus_nb = {
	.notifier_call = lu_bus_notify,
};

static int lu_bus_register(void)
{
	return bus_register_notifier(&pci_bus_type, &lu_bus_nb);
}

static void lu_bus_unregister(void)
{
	bus_unregister_notifier(&pci_bus_type, &lu_bus_nb);
}
#else
static int lu_bus_register(void)
{
	return 0;
}

static void lu_bus_unregister(void)
{
}
#endif

/* Hand over the domain of every marked HWPT, or of none */
static int lu_kho_finalize(struct kho_serialization *ser)
{
	struct iommufd_hwpt_paging *hwpt_paging;
	ktime_t t0 = ktime_get();
	unsigned int nr = 0;
	unsigned long token;
	int rc = 0;

	lockdep_assert_held(&lu_lock);
	xa_for_each(&lu_marked, token, hwpt_paging) {
		rc = iommu_domain_lu_preserve(hwpt_paging->common.domain,
					      token);
		if (rc) {
			pr_err("iommufd: cannot hand over the HWPT marked with token %#lx: %d\n",
			       token, rc);
			break;
		}
		WRITE_ONCE(hwpt_paging->lu_preserved, true);
		nr++;
	}
	if (!rc) {
		rc = iommufd_lu_handover_write(ser, &lu_marked, &lu_handover);
		if (rc)
			pr_err("iommufd: cannot describe the marked HWPTs to the next kernel: %d\n",
			       rc);
	}
	if (!rc) {
		lu_finalized = true;
		/* The IOMMU's part of finalize, for make bench */
		pr_info("iommufd: live update: %u HWPT(s) handed over in %lld us\n",
			nr, ktime_us_delta(ktime_get(), t0));
		return 0;
	}
	xa_for_each(&lu_marked, token, hwpt_paging) {
		if (!hwpt_paging->lu_preserved)
			continue;
		iommu_domain_lu_unpreserve(hwpt_paging->common.domain);
		WRITE_ONCE(hwpt_paging->lu_preserved, false);
	}
	return rc;
}

static void lu_kho_abort(void)
{
	struct iommufd_hwpt_paging *hwpt_paging;
	unsigned long token;

	lockdep_assert_held(&lu_lock);
	lu_finalized = false;
	/* Outside the notifier's locks: the work takes them */
	list_splice_tail_init(&lu_parked, &lu_unparking);
	schedule_work(&lu_unpark_work);
	iommufd_lu_handover_drop(lu_handover);
	lu_handover = NULL;
	xa_for_each(&lu_marked, token, hwpt_paging) {
		if (!hwpt_paging->lu_preserved)
			continue;
		iommu_domain_lu_unpreserve(hwpt_paging->common.domain);
		WRITE_ONCE(hwpt_paging->lu_preserved, false);
	}
}

static int lu_kho_notifier(struct notifier_block *nb, unsigned long event,
			   void *data)
{
	int rc = 0;

	down_write(&lu_attach_sem);
	mutex_lock(&lu_lock);
	switch (event) {
	case KEXEC_KHO_FINALIZE:
		rc = lu_kho_finalize(data);
		break;
	case KEXEC_KHO_ABORT:
		lu_kho_abort();
		break;
	}
	mutex_unlock(&lu_lock);
	up_write(&lu_attach_sem);
	return notifier_from_errno(rc);
}

/*
 * Before the IOMMU drivers' notifiers: they describe, in their own
 * subtrees, the domains handed over here.
 */
static struct notifier_block lu_kho_nb = {
	.notifier_call = lu_kho_notifier,
	.priority = 1,
};

/**
 * iommufd_lu_init - take back what the last kernel handed over, and hand
 *		     the marked HWPTs over at every kexec with handover
 *
 * Return: 0, or the error of register_kho_notifier().
 */
int iommufd_lu_init(void)
{
	int rc;

	if (!kho_is_enabled())
		return 0;
	iommufd_lu_handover_restore();
	rc = register_kho_notifier(&lu_kho_nb);
	if (rc)
		return rc;
	rc = lu_bus_register();
	if (rc)
		unregister_kho_notifier(&lu_kho_nb);
	return rc;
}

/**
 * iommufd_lu_exit - undo iommufd_lu_init()
 */
void iommufd_lu_exit(void)
{
	if (!kho_is_enabled())
		return;
	lu_bus_unregister();
	unregister_kho_notifier(&lu_kho_nb);
	flush_work(&lu_unpark_work);
}
