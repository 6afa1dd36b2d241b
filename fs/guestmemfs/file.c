// SPDX-License-Identifier: GPL-2.0-only
/*
 * guestmemfs files: reached through mmap(MAP_SHARED) only.
 *
 * The carve-out has no struct pages, so mappings are VM_PFNMAP and faults
 * insert PFNs: a PUD entry where 1 GiB of the file is 1 GiB of physically
 * contiguous, aligned blocks, a PMD entry per 2 MiB block otherwise, and
 * PTEs only where the mapping or the file size cuts a block. Faults hold
 * the invalidate_lock shared; size changes hold it exclusively, so no
 * fault can map a block that is being freed.
 */

#include <linux/cpufeature.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/huge_mm.h>
#include <linux/mman.h>
#include <linux/pagemap.h>
#include <linux/pfn_t.h>

#include "guestmemfs.h"

/* Are the 512 blocks of this file's 1 GiB at @first one aligned 1 GiB? */
static bool gmfs_pud_contiguous(const u32 *map, unsigned long first)
{
	unsigned long i;

	if (!IS_ALIGNED(gmfs_block_phys(map[first]), PUD_SIZE) ||
	    gmfs_block_bad(map[first]))
		return false;
	for (i = 1; i < GMFS_PUD_BLOCKS; i++)
		if (map[first + i] != map[first] + i ||
		    gmfs_block_bad(map[first + i]))
			return false;
	return true;
}

static vm_fault_t gmfs_huge_fault(struct vm_fault *vmf, unsigned int order)
{
	struct vm_area_struct *vma = vmf->vma;
	struct inode *inode = file_inode(vma->vm_file);
	unsigned long nr = 1UL << order;
	unsigned long addr = ALIGN_DOWN(vmf->address, PAGE_SIZE << order);
	pgoff_t pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	unsigned long block, pfn;
	vm_fault_t ret;
	u32 *map;

	if (order && (addr < vma->vm_start ||
		      addr + (PAGE_SIZE << order) > vma->vm_end ||
		      !IS_ALIGNED(pgoff, nr)))
		return VM_FAULT_FALLBACK;

	filemap_invalidate_lock_shared(inode->i_mapping);
	/* Past the end of the file: SIGBUS, or smaller pieces. */
	if (pgoff + nr > DIV_ROUND_UP(i_size_read(inode), PAGE_SIZE)) {
		ret = order ? VM_FAULT_FALLBACK : VM_FAULT_SIGBUS;
		goto out;
	}
	map = gmfs_block_map(inode->i_ino);
	block = pgoff >> (GMFS_BLOCK_SHIFT - PAGE_SHIFT);
	pfn = PHYS_PFN(gmfs_block_phys(map[block])) +
	      (pgoff & (GMFS_BLOCK_PAGES - 1));
	/* A failed block is never mapped again (memfail.c) */
	if (order < PUD_ORDER && gmfs_block_bad(map[block])) {
		ret = VM_FAULT_HWPOISON;
		goto out;
	}

	switch (order) {
	case 0:
		ret = vmf_insert_pfn(vma, vmf->address, pfn);
		break;
#ifdef CONFIG_ARCH_SUPPORTS_PMD_PFNMAP
	case PMD_ORDER:
		ret = vmf_insert_pfn_pmd(vmf, __pfn_to_pfn_t(pfn, PFN_DEV),
					 vmf->flags & FAULT_FLAG_WRITE);
		break;
#endif
#ifdef CONFIG_ARCH_SUPPORTS_PUD_PFNMAP
	case PUD_ORDER:
		/* A PUD leaf needs 1 GiB pages, which not every CPU has. */
		if (!boot_cpu_has(X86_FEATURE_GBPAGES) ||
		    !gmfs_pud_contiguous(map, block)) {
			ret = VM_FAULT_FALLBACK;
			break;
		}
		ret = vmf_insert_pfn_pud(vmf, __pfn_to_pfn_t(pfn, PFN_DEV),
					 vmf->flags & FAULT_FLAG_WRITE);
		break;
#endif
	default:
		ret = VM_FAULT_FALLBACK;
	}
out:
	filemap_invalidate_unlock_shared(inode->i_mapping);
	return ret;
}

static vm_fault_t gmfs_fault(struct vm_fault *vmf)
{
	return gmfs_huge_fault(vmf, 0);
}

/*
 * Before munmap, mprotect or mremap splits a mapping at @addr, remove any
 * 1 GiB entry that covers @addr. The core splits PMD entries that straddle
 * the cut itself, but not PUD ones: it would walk to a PMD table beneath
 * a PUD leaf. What is zapped here is faulted again, in smaller pieces.
 */
static int gmfs_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	unsigned long start = ALIGN_DOWN(addr, PUD_SIZE);

	if (!IS_ENABLED(CONFIG_ARCH_SUPPORTS_PUD_PFNMAP) ||
	    start < vma->vm_start || start + PUD_SIZE > vma->vm_end)
		return 0;
	/* Keep per-VMA-lock faults from putting it back before the split. */
	vma_start_write(vma);
	zap_vma_ptes(vma, start, PUD_SIZE);
	return 0;
}

static const struct vm_operations_struct gmfs_vm_ops = {
	.fault		= gmfs_fault,
	.huge_fault	= gmfs_huge_fault,
	.may_split	= gmfs_may_split,
};

static int gmfs_mmap(struct file *file, struct vm_area_struct *vma)
{
	/*
	 * Guest RAM is shared by definition; a private copy is not. A shared
	 * mapping of a read-only descriptor loses VM_SHARED but keeps
	 * VM_MAYSHARE, and is as legitimate as any other.
	 */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	file_accessed(file);
	vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &gmfs_vm_ops;
	return 0;
}

/*
 * Place mappings so that file offsets and addresses agree modulo 1 GiB
 * (2 MiB for smaller mappings): the fault handler can then use PUD and
 * PMD entries.
 */
static unsigned long gmfs_get_unmapped_area(struct file *file,
					    unsigned long addr,
					    unsigned long len,
					    unsigned long pgoff,
					    unsigned long flags)
{
	unsigned long align = len >= PUD_SIZE ? PUD_SIZE :
			      len >= PMD_SIZE ? PMD_SIZE : PAGE_SIZE;
	unsigned long off = pgoff << PAGE_SHIFT, ret;

	if (align == PAGE_SIZE || (flags & MAP_FIXED) || len + align < len)
		return mm_get_unmapped_area(current->mm, file, addr, len,
					    pgoff, flags);
	ret = mm_get_unmapped_area(current->mm, file, addr, len + align,
				   pgoff, flags);
	if (IS_ERR_VALUE(ret))
		return mm_get_unmapped_area(current->mm, file, addr, len,
					    pgoff, flags);
	/* The hint was taken as it is: keep it. */
	if (ret == addr)
		return addr;
	return ret + ((off - ret) & (align - 1));
}

static long gmfs_fallocate(struct file *file, int mode, loff_t offset,
			   loff_t len)
{
	struct inode *inode = file_inode(file);
	int err;

	/* Files are never sparse: only allocating up to a size makes sense. */
	if (mode)
		return -EOPNOTSUPP;
	inode_lock(inode);
	err = file_modified(file) ?: gmfs_grow(inode, offset + len);
	inode_unlock(inode);
	return err;
}

const struct file_operations gmfs_file_operations = {
	.open			= generic_file_open,
	.mmap			= gmfs_mmap,
	.get_unmapped_area	= gmfs_get_unmapped_area,
	.fallocate		= gmfs_fallocate,
	.llseek			= generic_file_llseek,
	/* Memory is the only copy: nothing to write back */
	.fsync			= noop_fsync,
};
