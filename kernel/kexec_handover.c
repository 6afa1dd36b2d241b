// SPDX-License-Identifier: GPL-2.0-only
/*
 * kexec_handover.c - kexec handover (KHO)
 *
 * KHO lets kernel code hand memory and state over to the kernel that
 * kexec boots: owners mark folios or physical ranges as preserved and, when
 * the handover is finalized, describe their state in FDT subtrees that the
 * next kernel finds again. The root FDT points at a chunk list that records
 * every preserved range (see kexec_handover_track.c).
 *
 * Scratch areas make this safe: KHO sets them aside at boot, lets only
 * movable allocations use them, and never lets anything in them be
 * preserved. The next kernel allocates only from them until it has reserved
 * all preserved memory.
 */

#define pr_fmt(fmt) "KHO: " fmt

#include <linux/cma.h>
#include <linux/crash_reserve.h>
#include <linux/ctype.h>
#include <linux/init.h>
#include <linux/initrd.h>
#include <linux/kexec.h>
#include <linux/kexec_handover.h>
#include <linux/kmemleak.h>
#include <linux/libfdt.h>
#include <linux/list.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/notifier.h>
#include <linux/page-isolation.h>
#include <linux/pgalloc_tag.h>
#include <linux/sched/clock.h>
#include <linux/slab.h>
#include <linux/range.h>
#include <linux/string.h>
#include <linux/unaligned.h>

#include <asm/early_ioremap.h>
#include <asm/sections.h>

/* KHO is tied to mm initialisation: it needs some mm internals. */
#include "../mm/internal.h"
#include "kexec_handover_internal.h"
#include "kexec_internal.h"

#define KHO_FDT_COMPATIBLE		"kho-v1"
#define PROP_PRESERVED_MEMORY_MAP	"preserved-memory-map"
#define PROP_SUB_FDT			"fdt"
#define KHO_SUBTREE_NAME_MAX		63

static bool kho_enable __ro_after_init;

/**
 * kho_is_enabled - is kexec handover enabled (kho=on)?
 *
 * Return: true if this kernel can hand state over to the next one.
 */
bool kho_is_enabled(void)
{
	return kho_enable;
}
EXPORT_SYMBOL_GPL(kho_is_enabled);

static int __init kho_parse_enable(char *p)
{
	static const char * const on[] = { "1", "on", "y", "yes", "true" };
	static const char * const off[] = { "0", "off", "n", "no", "false" };

	if (p && match_string(on, ARRAY_SIZE(on), p) >= 0) {
		kho_enable = true;
		return 0;
	}
	if (p && match_string(off, ARRAY_SIZE(off), p) >= 0) {
		kho_enable = false;
		return 0;
	}
	pr_err("kho=%s: expected on or off\n", p ?: "");
	return -EINVAL;
}
early_param("kho", kho_parse_enable);

/*
 * Scratch areas: one below 4 GiB for the allocations that need low memory,
 * one anywhere for the rest. They must hold everything the next kernel
 * allocates before it has reserved the preserved memory: its image and
 * initrd, memory map, page tables, KASAN shadow. By default they are
 * sized at 200% of what this kernel needed for the same by the time it
 * sets them aside, which measures the same needs on the same machine (see
 * kho_early_need()).
 *
 *	kho_scratch=N%		N% of the memory reserved early (1..1000)
 *	kho_scratch=SIZE[KMG]	SIZE in total, a quarter of it below 4 GiB
 */
static unsigned int scratch_scale __initdata = 200;
static phys_addr_t scratch_size __initdata;

static int __init kho_parse_scratch(char *p)
{
	unsigned long long size;
	size_t len = p ? strlen(p) : 0;
	char *end;

	if (len > 1 && len < 6 && p[len - 1] == '%') {
		char num[6] = {};
		unsigned int scale;

		memcpy(num, p, len - 1);
		if (!kstrtouint(num, 10, &scale) && scale && scale <= 1000) {
			scratch_scale = scale;
			scratch_size = 0;
			return 0;
		}
	} else if (len) {
		size = memparse(p, &end);
		if (end != p && !*end && size >= 2 * pageblock_nr_pages * PAGE_SIZE) {
			scratch_size = size;
			scratch_scale = 0;
			return 0;
		}
	}
	pr_err("kho_scratch=%s: expected N%% (1..1000) or a size of at least %lu KiB\n",
	       p ?: "", 2 * pageblock_nr_pages * PAGE_SIZE / SZ_1K);
	return -EINVAL;
}
early_param("kho_scratch", kho_parse_scratch);

/*
 * What a kernel booted with a handover does with the memory outside the
 * scratch areas when the handover is broken (kho_on_error=): the previous
 * kernel preserved some of it, guests and devices may still be using it,
 * and this kernel cannot tell which.
 */
enum kho_on_error {
	/* Keep all of it out of the page allocator, run on scratch only */
	KHO_ON_ERROR_SCRATCH,
	/* Stop: the operator decides */
	KHO_ON_ERROR_PANIC,
	/* Give it all to the page allocator, as after a plain kexec */
	KHO_ON_ERROR_RECLAIM,
};

static const char * const kho_on_error_names[] __initconst = {
	[KHO_ON_ERROR_SCRATCH] = "scratch",
	[KHO_ON_ERROR_PANIC] = "panic",
	[KHO_ON_ERROR_RECLAIM] = "reclaim",
};

static enum kho_on_error kho_on_error __initdata;

static int __init kho_parse_on_error(char *p)
{
	int i = p ? match_string(kho_on_error_names,
				 ARRAY_SIZE(kho_on_error_names), p) : -EINVAL;

	if (i < 0) {
		pr_err("kho_on_error=%s: expected scratch, panic or reclaim\n",
		       p ?: "");
		return -EINVAL;
	}
	kho_on_error = i;
	return 0;
}
early_param("kho_on_error", kho_parse_on_error);

/* The scratch areas in use: set aside at boot, or handed over. */
static struct kho_scratch *kho_scratch;
static unsigned int kho_scratch_cnt;

#define KHO_SCRATCH_ALIGN	(pageblock_nr_pages * PAGE_SIZE)

static bool kho_in_scratch(phys_addr_t phys, phys_addr_t size)
{
	unsigned int i;

	for (i = 0; i < kho_scratch_cnt; i++)
		if (phys < kho_scratch[i].addr + kho_scratch[i].size &&
		    kho_scratch[i].addr < phys + size)
			return true;
	return false;
}

/**
 * kho_scratch_areas - the scratch areas in use
 * @cnt: returns their number
 *
 * Return: the array of scratch areas, set aside at boot or handed over.
 */
const struct kho_scratch *kho_scratch_areas(unsigned int *cnt)
{
	*cnt = kho_scratch_cnt;
	return kho_scratch;
}

/* What the next kernel needs in scratch before it has read the handover */
struct kho_need {
	phys_addr_t kern, kern_low;	/* memblock allocations; below 4 GiB */
	phys_addr_t again, again_low;	/* of them, the CMA and crash kernel */
	phys_addr_t image;		/* kernel image and initrd */
};

static void __init kho_need_add(struct kho_need *need, phys_addr_t base,
				phys_addr_t size)
{
	need->again += size;
	if (base < ARCH_LOW_ADDRESS_LIMIT)
		need->again_low += min(size, ARCH_LOW_ADDRESS_LIMIT - base);
}

static int __init kho_need_cma(struct cma *cma, void *data)
{
	kho_need_add(data, cma_get_base(cma), cma_get_size(cma));
	return 0;
}

/*
 * Measured on this kernel: what it allocated for itself from memblock so
 * far (memory map, page tables, KASAN shadow, per-CPU areas), and its
 * image and initrd, which the next ones take in scratch. Its CMA areas
 * and crash kernel are memblock allocations too, which the next kernel
 * reserves again this early, but only once: they are not scaled. Not
 * what memblock_reserve() set aside for firmware; nor gigantic hugetlb
 * pages, which with KHO are allocated after this, and in a kernel booted
 * with a handover once the preserved memory is reserved
 * (hugetlb_bootmem_alloc_late()): counting them would ask for scratch the
 * size of the machine's huge pages.
 */
static void __init kho_early_need(struct kho_need *need)
{
	memset(need, 0, sizeof(*need));
	need->kern_low = memblock_reserved_kern_size(ARCH_LOW_ADDRESS_LIMIT);
	need->kern = memblock_reserved_kern_size(PHYS_ADDR_MAX);
	cma_for_each_area(kho_need_cma, need);
#ifdef CONFIG_CRASH_RESERVE
	if (crashk_res.end > crashk_res.start)
		kho_need_add(need, crashk_res.start, resource_size(&crashk_res));
	if (crashk_low_res.end > crashk_low_res.start)
		kho_need_add(need, crashk_low_res.start,
			     resource_size(&crashk_low_res));
#endif
	need->again = min(need->again, need->kern);
	need->again_low = min(need->again_low, need->kern_low);
	need->image = __pa_symbol(_end) - __pa_symbol(_text);
#ifdef CONFIG_BLK_DEV_INITRD
	if (initrd_end > initrd_start)
		need->image += initrd_end - initrd_start;
#endif
}

/* @scale percent of what is scaled, the rest once */
static phys_addr_t __init kho_scaled(phys_addr_t all, phys_addr_t once,
				     unsigned int scale)
{
	return (all - once) * scale / 100 + once;
}

/*
 * What this kernel allocated from memblock before it could have read a
 * handover: about what the next kernel allocates in scratch, beside the
 * segments of its kexec image (kho_check_kimage()).
 */
static phys_addr_t kho_early_kern;

static void __init kho_reserve_scratch(void)
{
	phys_addr_t low, global, addr;
	struct kho_need need;

	kho_early_need(&need);
	kho_early_kern = need.kern;
	pr_info("the next kernel needs about %llu MiB early: %llu MiB allocated by this one (%llu MiB below 4 GiB; %llu MiB of CMA and crash kernel, which it reserves again) and %llu MiB of image and initrd, of %llu MiB reserved so far\n",
		(need.kern + need.image) >> 20, need.kern >> 20,
		need.kern_low >> 20, need.again >> 20, need.image >> 20,
		memblock_reserved_size() >> 20);
	if (scratch_scale) {
		low = kho_scaled(need.kern_low, need.again_low, scratch_scale);
		global = kho_scaled(need.kern + need.image, need.again,
				    scratch_scale);
		global = global > low ? global - low : 0;
	} else {
		low = scratch_size / 4;
		global = scratch_size - low;
	}
	low = round_up(max(low, KHO_SCRATCH_ALIGN), KHO_SCRATCH_ALIGN);
	global = round_up(max(global, KHO_SCRATCH_ALIGN), KHO_SCRATCH_ALIGN);

	kho_scratch = memblock_alloc(2 * sizeof(*kho_scratch), PAGE_SIZE);
	if (!kho_scratch)
		goto fail;

	addr = memblock_phys_alloc_range(low, KHO_SCRATCH_ALIGN, 0,
					 ARCH_LOW_ADDRESS_LIMIT);
	if (!addr)
		goto fail_desc;
	/*
	 * Scratch becomes CMA memory of the page allocator (and the next
	 * kernel's boot memory): not an object for kmemleak to track or
	 * scan, as for cma_declare_contiguous().
	 */
	kmemleak_ignore_phys(addr);
	kho_scratch[0].addr = addr;
	kho_scratch[0].size = low;

	addr = memblock_phys_alloc(global, KHO_SCRATCH_ALIGN);
	if (!addr)
		goto fail_low;
	kmemleak_ignore_phys(addr);
	kho_scratch[1].addr = addr;
	kho_scratch[1].size = global;
	kho_scratch_cnt = 2;

	if (scratch_scale)
		pr_info("scratch, %u%% of that (CMA and crash kernel once): %llu MiB at %#llx, %llu MiB at %#llx\n",
			scratch_scale,
			kho_scratch[0].size >> 20, kho_scratch[0].addr,
			kho_scratch[1].size >> 20, kho_scratch[1].addr);
	else
		pr_info("scratch, as kho_scratch= asks: %llu MiB at %#llx, %llu MiB at %#llx\n",
			kho_scratch[0].size >> 20, kho_scratch[0].addr,
			kho_scratch[1].size >> 20, kho_scratch[1].addr);
	return;

fail_low:
	memblock_phys_free(kho_scratch[0].addr, low);
fail_desc:
	memblock_free(kho_scratch, 2 * sizeof(*kho_scratch));
	kho_scratch = NULL;
fail:
	pr_err("cannot reserve %pa + %pa bytes of scratch memory: disabled\n",
	       &low, &global);
	kho_enable = false;
}

/* Incoming: the state the previous kernel handed over. */

#define KHO_SCRATCH_MAX		16

/*
 * The struct page of the first page of every preserved block says so, and
 * gives the block's order, until the block is restored.
 */
#define KHO_PAGE_MAGIC		0x4b484f50UL	/* "KHOP" */
#define KHO_PAGE_ORDER_MASK	0xffUL

#define PROP_UNMAPPED_MEMORY		"unmapped-memory"
/* Ranges of memory outside the direct map a handover can carry */
#define KHO_UNMAPPED_MAX		64
/* Bad parts of a sound handover reported one by one, then counted */
#define KHO_BAD_REPORT_MAX		16

static struct kho_in {
	/* The root FDT, 0 if there is none or it was rejected. */
	phys_addr_t fdt_phys;
	phys_addr_t scratch_phys;
	phys_addr_t mem_map;
	/* Why the handover is broken, if it is: kho_memory_init() acts */
	const char *broken;
	phys_addr_t broken_at;
	/* Memory outside the direct map, taken out before it was built */
	struct range unmapped[KHO_UNMAPPED_MAX];
	unsigned int nr_unmapped;
	/* Which of them an owner took back with kho_claim_unmapped() */
	DECLARE_BITMAP(claimed, KHO_UNMAPPED_MAX);
	unsigned long bad_reported;
	/* Claims of preserved blocks by kho_restore_*() */
	spinlock_t lock;
} kho_in = {
	.lock = __SPIN_LOCK_UNLOCKED(kho_in.lock),
};

static void __init kho_in_reject(const char *why, phys_addr_t where)
{
	pr_err("ignoring the handover from the previous kernel: %s (at %pa)\n",
	       why, &where);
}

/* A bad part of a sound handover, dropped: the first few are named */
static void __init kho_in_drop(const char *why, phys_addr_t phys,
			       phys_addr_t size)
{
	if (kho_in.bad_reported++ < KHO_BAD_REPORT_MAX)
		pr_err("dropping part of the handover: %s (%pa, %pa bytes)\n",
		       why, &phys, &size);
}

/*
 * Is [phys, phys + size) memory the kernel maps? It may span several
 * memblock.memory regions: NUMA init splits them at node boundaries, and
 * preserved blocks, or runs of them, can straddle those. The regions are
 * sorted and do not overlap: find the first one that ends after @phys,
 * then check that regions follow each other without a hole up to the end.
 */
static bool __init kho_usable_memory(phys_addr_t phys, phys_addr_t size)
{
	struct memblock_type *mem = &memblock.memory;
	phys_addr_t end = phys + size;
	unsigned long lo = 0, hi = mem->cnt;

	if (!size || end < phys)
		return false;
	while (lo < hi) {
		unsigned long mid = lo + (hi - lo) / 2;

		if (mem->regions[mid].base + mem->regions[mid].size <= phys)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < mem->cnt; lo++) {
		struct memblock_region *r = &mem->regions[lo];

		if (r->base > phys || memblock_is_nomap(r))
			return false;
		if (r->base + r->size >= end)
			return true;
		phys = r->base + r->size;
	}
	return false;
}

/*
 * Check the scratch areas. One that lies wholly outside memory is dropped
 * from the list (and reported): nothing can have been placed there, and
 * nothing will be. Anything else wrong with an area breaks the list.
 */
static const char * __init kho_check_scratch(struct kho_scratch *s,
					     unsigned int *cnt,
					     phys_addr_t *where)
{
	unsigned int i, j;

	for (i = 0; i < *cnt; ) {
		*where = s[i].addr;
		if (!s[i].size || !IS_ALIGNED(s[i].addr, KHO_SCRATCH_ALIGN) ||
		    !IS_ALIGNED(s[i].size, KHO_SCRATCH_ALIGN) ||
		    s[i].addr + s[i].size < s[i].addr)
			return "misaligned scratch area";
		if (!memblock_overlaps_region(&memblock.memory, s[i].addr,
					      s[i].size)) {
			kho_in_drop("scratch area outside memory", s[i].addr,
				    s[i].size);
			(*cnt)--;
			memmove(&s[i], &s[i + 1], (*cnt - i) * sizeof(*s));
			continue;
		}
		if (!kho_usable_memory(s[i].addr, s[i].size))
			return "scratch area partly outside memory";
		for (j = 0; j < i; j++)
			if (s[i].addr < s[j].addr + s[j].size &&
			    s[j].addr < s[i].addr + s[i].size)
				return "overlapping scratch areas";
		i++;
	}
	if (!*cnt)
		return "no scratch area in memory";
	return NULL;
}

/* Is [phys, phys + size) in one of the @cnt areas of @s? */
static bool __init kho_overlaps(const struct kho_scratch *s, unsigned int cnt,
				phys_addr_t phys, phys_addr_t size)
{
	unsigned int i;

	for (i = 0; i < cnt; i++)
		if (phys < s[i].addr + s[i].size && s[i].addr < phys + size)
			return true;
	return false;
}

/* The root FDT, mapped at @fdt: what is wrong with it, or NULL */
static const char * __init kho_check_fdt(const void *fdt, u64 fdt_len,
					 const u64 **map)
{
	int len;

	if (fdt_check_header(fdt) || fdt_totalsize(fdt) > fdt_len)
		return "truncated or corrupt FDT";
	if (fdt_node_check_compatible(fdt, 0, KHO_FDT_COMPATIBLE))
		return "FDT is not " KHO_FDT_COMPATIBLE;
	*map = fdt_getprop(fdt, 0, PROP_PRESERVED_MEMORY_MAP, &len);
	if (!*map || len != sizeof(**map))
		return "no " PROP_PRESERVED_MEMORY_MAP;
	return NULL;
}

/* Map the list of scratch areas and check it */
static const char * __init kho_map_scratch(phys_addr_t phys, u64 len,
					   unsigned int *cnt,
					   struct kho_scratch **scratch,
					   phys_addr_t *where)
{
	if (!*cnt || *cnt > KHO_SCRATCH_MAX ||
	    len != *cnt * sizeof(struct kho_scratch) ||
	    !kho_usable_memory(phys, len))
		return "bad scratch area list";
	*scratch = early_memremap(phys, len);
	if (!*scratch)
		return "cannot map the scratch area list";
	return kho_check_scratch(*scratch, cnt, where);
}

/*
 * Map the root FDT and check it. The previous kernel writes its root FDT
 * in one page and preserves that page, which is all this kernel checks and
 * reserves: an FDT that may extend past it is not one it wrote.
 */
static const char * __init kho_map_fdt(phys_addr_t phys, u64 len,
				       const struct kho_scratch *scratch,
				       unsigned int cnt, void **fdt,
				       const u64 **map)
{
	if (len > PAGE_SIZE)
		return "FDT larger than a page";
	if (!PAGE_ALIGNED(phys) || len < sizeof(struct fdt_header) ||
	    !kho_usable_memory(phys, len))
		return "FDT outside memory";
	if (kho_overlaps(scratch, cnt, phys, len))
		return "FDT in scratch memory";
	*fdt = early_memremap(phys, len);
	if (!*fdt)
		return "cannot map the FDT";
	return kho_check_fdt(*fdt, len, map);
}

/* Is an unmapped range of the handover one this kernel can keep out? */
static const char * __init kho_unmapped_problem(phys_addr_t base, u64 size,
						const struct kho_scratch *s,
						unsigned int cnt,
						phys_addr_t fdt_phys)
{
	unsigned int i;

	if (!size || !PAGE_ALIGNED(base) || !PAGE_ALIGNED(size) ||
	    base + size < base)
		return "misaligned unmapped range";
	if (!kho_usable_memory(base, size))
		return "unmapped range outside memory";
	/* What the architecture allocates there early (real mode code) */
	if (base < SZ_1M)
		return "unmapped range in the first MiB";
	if (kho_overlaps(s, cnt, base, size) ||
	    (fdt_phys < base + size && base < fdt_phys + PAGE_SIZE) ||
	    memblock_is_region_reserved(base, size))
		return "unmapped range over memory in use";
	for (i = 0; i < kho_in.nr_unmapped; i++)
		if (base <= kho_in.unmapped[i].end &&
		    kho_in.unmapped[i].start < base + size)
			return "overlapping unmapped ranges";
	return NULL;
}

/*
 * Memory the previous kernel handed over outside its direct map (a
 * filesystem's carve-out, say) must stay out of this kernel's memory map,
 * and so be taken out of memblock before the direct map is built, here.
 * A range that cannot be is dropped, and reported; the others are kept.
 */
static void __init kho_in_take_unmapped(const void *fdt,
					const struct kho_scratch *s,
					unsigned int cnt, phys_addr_t fdt_phys)
{
	int len, i;
	const u64 *val = fdt_getprop(fdt, 0, PROP_UNMAPPED_MEMORY, &len);

	if (!val)
		return;
	if (len % (2 * sizeof(u64)) ||
	    len / (2 * sizeof(u64)) > KHO_UNMAPPED_MAX) {
		kho_in_drop("bad " PROP_UNMAPPED_MEMORY, fdt_phys, len);
		return;
	}
	for (i = 0; i < len / (2 * sizeof(u64)); i++) {
		phys_addr_t base = get_unaligned(&val[2 * i]);
		u64 size = get_unaligned(&val[2 * i + 1]);
		const char *why;

		why = kho_unmapped_problem(base, size, s, cnt, fdt_phys);
		if (why) {
			kho_in_drop(why, base, size);
			continue;
		}
		/*
		 * A sound range this kernel cannot keep out of its memory
		 * map would reach the page allocator: the handover is
		 * broken, kho_on_error= decides.
		 */
		if (memblock_remove(base, size)) {
			kho_in_reject("cannot remove an unmapped range from memory",
				      base);
			kho_in.fdt_phys = 0;
			kho_in.broken = "cannot remove an unmapped range from memory";
			kho_in.broken_at = base;
			return;
		}
		kho_in.unmapped[kho_in.nr_unmapped++] =
			(struct range){ base, base + size - 1 };
	}
}

/**
 * kho_populate - take the handover from the previous kernel
 * @fdt_phys: physical address of the root FDT
 * @fdt_len: size of the buffer holding it
 * @scratch_phys: physical address of the array of &struct kho_scratch
 * @scratch_len: size of that array in bytes
 *
 * Called by the architecture's boot code once the firmware memory map is in
 * memblock and before anything is allocated from it or directly mapped.
 *
 * If the scratch areas are sane, marks them and limits memblock
 * allocations to them until kho_memory_init() has reserved the preserved
 * memory; takes the unmapped ranges of the handover out of memblock. If
 * the root FDT is not sane, the handover is broken, and kho_memory_init()
 * acts as kho_on_error= says. Without sane scratch areas there is nothing
 * to run on but all memory: kho_on_error=reclaim boots as after a plain
 * kexec, otherwise this panics.
 *
 * Return: 0 if this kernel runs on the scratch areas, -EINVAL if it ignores
 * the handover.
 */
int __init kho_populate(phys_addr_t fdt_phys, u64 fdt_len,
			phys_addr_t scratch_phys, u64 scratch_len)
{
	unsigned int cnt = scratch_len / sizeof(struct kho_scratch);
	struct kho_scratch *scratch = NULL;
	const char *why = NULL, *fdt_why = NULL;
	phys_addr_t where = scratch_phys;
	const u64 *map = NULL;
	void *fdt = NULL;
	unsigned int i;
	int ret = -EINVAL;

	/* First what this kernel runs on, whatever the state of the rest */
	why = kho_map_scratch(scratch_phys, scratch_len, &cnt, &scratch, &where);
	if (why)
		goto no_scratch;

	fdt_why = kho_map_fdt(fdt_phys, fdt_len, scratch, cnt, &fdt, &map);
	if (fdt_why) {
		kho_in_reject(fdt_why, fdt_phys);
		if (kho_on_error == KHO_ON_ERROR_RECLAIM) {
			pr_warn("kho_on_error=reclaim: booting as without a handover\n");
			goto out;
		}
		kho_in.broken = fdt_why;
		kho_in.broken_at = fdt_phys;
	}

	for (i = 0; i < cnt; i++) {
		if (memblock_mark_kho_scratch(scratch[i].addr, scratch[i].size)) {
			why = "cannot mark the scratch areas";
			where = scratch[i].addr;
			while (i--)
				memblock_clear_kho_scratch(scratch[i].addr,
							   scratch[i].size);
			goto no_scratch;
		}
	}
	memblock_reserve(scratch_phys, scratch_len);
	memblock_set_kho_scratch_only();
	kho_in.scratch_phys = scratch_phys;
	kho_scratch_cnt = cnt;
	if (!fdt_why) {
		kho_in.fdt_phys = fdt_phys;
		kho_in.mem_map = get_unaligned(map);
		kho_in_take_unmapped(fdt, scratch, cnt, fdt_phys);
		pr_info("handover found: FDT at %pa, %u scratch areas, %u unmapped ranges\n",
			&fdt_phys, cnt, kho_in.nr_unmapped);
	}
	ret = 0;
	goto out;

no_scratch:
	kho_in_reject(why, where);
	if (kho_on_error != KHO_ON_ERROR_RECLAIM)
		panic("KHO: a broken handover and no scratch area to run on: cold boot, or boot with kho_on_error=reclaim to give all memory to this kernel\n");
	pr_warn("kho_on_error=reclaim: booting as without a handover\n");
out:
	if (scratch)
		early_memunmap(scratch, scratch_len);
	if (fdt)
		early_memunmap(fdt, fdt_len);
	return ret;
}

/**
 * kho_in_unmapped - memory the previous kernel handed over outside its
 *		     direct map
 * @nr: returns the number of ranges
 *
 * For the architecture, once kho_populate() has taken the ranges out of
 * memblock: they are not RAM for this kernel (they have no memory map),
 * though they stay RAM in the firmware memory map.
 *
 * Return: the ranges.
 */
const struct range * __init kho_in_unmapped(unsigned int *nr)
{
	*nr = kho_in.nr_unmapped;
	return kho_in.unmapped;
}

/*
 * Handover metadata, and the memory it says is preserved, must be memory
 * this kernel has not used: the previous kernel did not preserve anything
 * in scratch, and everything this kernel allocated so far is in scratch or
 * reserved (its own image included).
 */
static bool __init kho_untouched(struct kho_chunk_walk *walk, phys_addr_t phys,
				 phys_addr_t size)
{
	return kho_usable_memory(phys, size) && !kho_in_scratch(phys, size) &&
	       !memblock_is_region_reserved(phys, size);
}

static bool __init kho_meta_ok(struct kho_chunk_walk *walk, phys_addr_t phys,
			       size_t size)
{
	return kho_untouched(walk, phys, size);
}

/*
 * The previous kernel preserved its root FDT as an order-0 folio, so it is
 * in a run of order-0 blocks that overlaps no other. The runs are sorted.
 */
static bool __init kho_fdt_preserved(const struct kho_runs *runs)
{
	unsigned long i;

	for (i = 0; i < runs->nr && runs->run[i].base <= kho_in.fdt_phys; i++)
		if (kho_in.fdt_phys < runs->run[i].base + runs->run[i].size)
			return !runs->run[i].order && !runs->run[i].overlaps;
	return false;
}

/*
 * Reserve the sorted runs, merging neighbours: the chunk list is in order
 * of block size, and memblock is fastest, and smallest, when regions come
 * sorted and few. Overlapping runs are merged too. memblock fails only
 * when it cannot grow its array.
 */
static int __init kho_reserve_runs(const struct kho_runs *runs,
				   phys_addr_t *where)
{
	unsigned long i;
	int err;

	for (i = 0; i < runs->nr; ) {
		phys_addr_t base = runs->run[i].base;
		phys_addr_t end = base + runs->run[i].size;

		for (i++; i < runs->nr && runs->run[i].base <= end; i++)
			end = max(end, runs->run[i].base + runs->run[i].size);
		err = memblock_reserve_noinit(base, end - base);
		if (err) {
			*where = base;
			return err;
		}
	}
	return 0;
}

/* Mark each block for kho_restore_*(), but those that overlap others. */
static void __init kho_mark_preserved(const struct kho_runs *runs)
{
	unsigned long i, pfn, end;

	for (i = 0; i < runs->nr; i++) {
		const struct kho_run *run = &runs->run[i];

		if (run->overlaps)
			continue;
		pfn = PHYS_PFN(run->base);
		end = pfn + PHYS_PFN(run->size);
		for (; pfn < end; pfn += 1UL << run->order)
			set_page_private(pfn_to_page(pfn),
					 KHO_PAGE_MAGIC << 32 | run->order);
	}
}

static void __init kho_walk_bad(struct kho_chunk_walk *walk, const char *why,
				phys_addr_t phys, phys_addr_t size)
{
	kho_in_drop(why, phys, size);
}

/* Free memory in the scratch areas, which this kernel still lives on */
static phys_addr_t __init kho_scratch_free(void)
{
	phys_addr_t start, end, sum = 0;
	u64 i;

	for_each_free_mem_range(i, NUMA_NO_NODE, MEMBLOCK_KHO_SCRATCH, &start,
				&end, NULL)
		sum += end - start;
	return sum;
}

/*
 * Reserve what the previous kernel preserved. A chunk list that cannot be
 * walked breaks the whole handover; inside a sound one, bitmaps and runs
 * that cannot be right are dropped one by one (and reported), the rest is
 * kept. Overlapping runs are kept reserved, as memory the previous kernel
 * may have given out, but restored to nobody.
 */
static void __init kho_in_reserve_memory(void)
{
	struct kho_runs runs = {};
	struct kho_chunk_walk walk = {
		.meta_ok = kho_meta_ok,
		.range_ok = kho_untouched,
		.preserved = kho_runs_add,
		.bad = kho_walk_bad,
		.data = &runs,
	};
	phys_addr_t where = kho_in.fdt_phys, budget;
	unsigned long overlaps = 0;
	const char *why = NULL;
	u64 t0 = local_clock();

	if (kho_chunks_check(kho_in.mem_map, &walk)) {
		why = walk.error;
		where = walk.error_phys;
		goto out;
	}
	/* The root FDT is preserved memory too: it must be in the map. */
	if (!kho_untouched(&walk, kho_in.fdt_phys, PAGE_SIZE)) {
		why = "FDT overlaps memory in use";
		goto out;
	}
	if (!walk.runs) {
		why = "FDT not preserved";
		goto out;
	}
	/*
	 * A temporary array, from scratch memory like everything else yet,
	 * and as many memblock regions at worst: a handover fragmented
	 * enough to exhaust the scratch areas is refused before it does.
	 */
	runs.max = walk.runs;
	budget = (phys_addr_t)runs.max *
		 (sizeof(*runs.run) + 2 * sizeof(struct memblock_region));
	if (budget > kho_scratch_free() / 2) {
		why = "too fragmented for the scratch areas";
		where = kho_in.mem_map;
		goto out;
	}
	runs.run = memblock_alloc(runs.max * sizeof(*runs.run), SMP_CACHE_BYTES);
	if (!runs.run) {
		why = "no memory to reserve the preserved memory";
		where = kho_in.mem_map;
		goto out;
	}
	kho_chunks_apply(kho_in.mem_map, &walk);

	/*
	 * Each bitmap was checked alone: blocks of different bitmaps may
	 * still overlap, and would then be restored twice. Find those, and
	 * an FDT that is not an order-0 block of its own, before reserving
	 * anything.
	 */
	overlaps = kho_runs_sort(&runs, &walk);
	if (!kho_fdt_preserved(&runs)) {
		why = "FDT not preserved";
		goto out;
	}
	/*
	 * If not all of it can be reserved, what was stays reserved: the
	 * previous kernel's users may still be using it, so leaking it is
	 * the safe way out. Pages are only marked for kho_restore_*() once
	 * the whole handover is reserved.
	 */
	if (kho_reserve_runs(&runs, &where)) {
		why = "cannot reserve the preserved memory";
		goto out;
	}
	kho_mark_preserved(&runs);
out:
	if (runs.run)
		memblock_free(runs.run, runs.max * sizeof(*runs.run));
	if (why) {
		kho_in_reject(why, where);
		kho_in.fdt_phys = 0;
		kho_in.broken = why;
		kho_in.broken_at = where;
		return;
	}
	pr_info("reserved %lu preserved blocks, %llu MiB (%lu bitmaps in %lu chunks, %lu runs) in %llu us\n",
		walk.blocks, (u64)walk.bytes >> 20, walk.bitmaps, walk.chunks,
		walk.runs, div_u64(local_clock() - t0, NSEC_PER_USEC));
	if (walk.bad_bitmaps || walk.bad_runs || overlaps)
		pr_err("dropped %lu bitmaps and %lu runs of preserved memory, and kept %lu overlapping runs reserved for nobody; the rest of the handover is used\n",
		       walk.bad_bitmaps, walk.bad_runs, overlaps);
}

/* The scratch areas' size: memory a broken handover leaves, room to kexec */
static phys_addr_t kho_scratch_total(void)
{
	phys_addr_t sum = 0;
	unsigned int i;

	for (i = 0; i < kho_scratch_cnt; i++)
		sum += kho_scratch[i].size;
	return sum;
}

/*
 * A broken handover: nothing of it can be restored, and any memory
 * outside the scratch areas may still be in use by a guest or a device.
 * By default it all stays reserved and the kernel runs on the scratch
 * areas; it cannot hand anything over itself (everything it has is in
 * scratch), so KHO is off until a cold boot.
 *
 * Return: true if the scratch areas are all this kernel has.
 */
static bool __init kho_in_broken(void)
{
	struct memblock_region *r;
	phys_addr_t total = kho_scratch_total();

	switch (kho_on_error) {
	case KHO_ON_ERROR_PANIC:
		panic("KHO: broken handover (%s at %pa), kho_on_error=panic\n",
		      kho_in.broken, &kho_in.broken_at);
	case KHO_ON_ERROR_RECLAIM:
		pr_warn("kho_on_error=reclaim: all memory goes to this kernel, whatever the previous one left in it\n");
		return false;
	case KHO_ON_ERROR_SCRATCH:
		break;
	}

	for_each_mem_region(r) {
		phys_addr_t cur = r->base, end = r->base + r->size;

		while (cur < end) {
			phys_addr_t next = end, skip = end;
			unsigned int i;

			/* The first scratch area that ends after @cur */
			for (i = 0; i < kho_scratch_cnt; i++) {
				phys_addr_t s = kho_scratch[i].addr;
				phys_addr_t e = s + kho_scratch[i].size;

				if (e > cur && max(s, cur) < next) {
					next = max(s, cur);
					skip = e;
				}
			}
			if (next > cur)
				memblock_reserve(cur, min(next, end) - cur);
			cur = next < end ? skip : end;
		}
	}
	kho_enable = false;
	pr_crit("broken handover: all memory outside the scratch areas stays out of use, this kernel runs on %llu MiB of scratch memory and cannot hand over; cold boot to get it back, or boot with kho_on_error=reclaim\n",
		(u64)total >> 20);
	return true;
}

/*
 * In a kernel booted with a handover, scratch memory goes to the page
 * allocator as CMA pageblocks, as in the kernel that set it aside; the
 * pageblocks are marked before memblock releases the memory.
 */
static void __init kho_in_release_scratch(void)
{
	unsigned int i;

	for (i = 0; i < kho_scratch_cnt; i++) {
		unsigned long pfn = PHYS_PFN(kho_scratch[i].addr);
		unsigned long end = pfn + PHYS_PFN(kho_scratch[i].size);

		for (; pfn < end; pfn += pageblock_nr_pages)
			set_pageblock_migratetype(pfn_to_page(pfn), MIGRATE_CMA);
	}
}

/* After a broken handover, with kho_on_error=scratch */
static bool kho_degraded __initdata;

/**
 * kho_runs_on_scratch - does this kernel run on its scratch areas alone?
 *
 * After a broken handover, by default (kho_on_error=scratch), all memory
 * outside the scratch areas stays out of use: what memblock still has to
 * give is scratch memory, the little this kernel runs on.
 *
 * Return: true if so, once kho_memory_init() has run.
 */
bool __init kho_runs_on_scratch(void)
{
	return kho_degraded;
}

/**
 * kho_memory_init - set KHO's memory up, from mm_core_init()
 *
 * Runs while memblock is still the allocator. After a handover, reserves
 * everything the previous kernel preserved, lets memblock allocate from
 * all memory again, and reuses the scratch areas for the next kexec; if
 * the handover is broken, does what kho_on_error= says. Otherwise sets
 * scratch areas aside when KHO is enabled.
 */
void __init kho_memory_init(void)
{
	if (kho_in.scratch_phys) {
		kho_scratch = phys_to_virt(kho_in.scratch_phys);
		/* All of it in scratch, where the next kernel has to fit too */
		kho_early_kern = memblock_reserved_kern_size(PHYS_ADDR_MAX);
		if (!kho_in.broken)
			kho_in_reserve_memory();
		if (kho_in.broken)
			kho_degraded = kho_in_broken();
		memblock_clear_kho_scratch_only();
		/* Degraded, scratch is all there is: not only for movable */
		if (!kho_degraded)
			kho_in_release_scratch();
	} else if (kho_enable) {
		kho_reserve_scratch();
	}
}

/* Take a preserved block at @page: its order, or -ENOENT. */
static int kho_claim_block(struct page *page)
{
	unsigned long priv;

	lockdep_assert_held(&kho_in.lock);
	priv = page_private(page);
	if (priv >> 32 != KHO_PAGE_MAGIC)
		return -ENOENT;
	set_page_private(page, 0);
	return priv & KHO_PAGE_ORDER_MASK;
}

/*
 * Count @nr pages from @page as managed again, each in its own zone: a
 * block larger than the buddy allocator's (restored as pages) can cross
 * from one zone, or node, into the next.
 */
static void kho_adjust_managed(struct page *page, unsigned long nr)
{
	unsigned long i, j;

	for (i = 0; i < nr; i = j) {
		struct zone *zone = page_zone(nth_page(page, i));

		for (j = i + 1; j < nr && page_zone(nth_page(page, j)) == zone; j++)
			;
		adjust_managed_page_count(nth_page(page, i), j - i);
	}
}

/*
 * The pages of a preserved block were initialised once, with a reference
 * each, and never given to the page allocator: account them now.
 */
static void kho_init_block_pages(struct page *page, unsigned int order,
				 bool compound)
{
	unsigned long i;

	/*
	 * Reserved, never allocated: no allocation tag to drop when the
	 * owner frees them (memory allocation profiling), as a folio or as
	 * pages one by one.
	 */
	if (compound) {
		for (i = 1; i < (1UL << order); i++)
			set_page_count(page + i, 0);
		if (order)
			prep_compound_page(page, order);
		clear_page_tag_ref(page);
	} else {
		for (i = 0; i < (1UL << order); i++)
			clear_page_tag_ref(nth_page(page, i));
	}
	kho_adjust_managed(page, 1UL << order);
}

/**
 * kho_restore_folio - take back a folio preserved by the previous kernel
 * @phys: physical address of the folio, as preserved
 *
 * The folio comes back with the order it was preserved with, one
 * reference, and counted as managed memory again: folio_put() frees it.
 * Each preserved folio can be restored once.
 *
 * Return: the folio, or NULL if no folio was preserved at @phys, it was
 * already restored, or it is larger than the page allocator's largest
 * order (restore such memory with kho_restore_phys()).
 */
struct folio *kho_restore_folio(phys_addr_t phys)
{
	struct page *page;
	int order;

	if (!kho_in.fdt_phys || !PAGE_ALIGNED(phys))
		return NULL;
	page = pfn_to_online_page(PHYS_PFN(phys));
	if (!page)
		return NULL;

	spin_lock(&kho_in.lock);
	order = page_private(page) & KHO_PAGE_ORDER_MASK;
	if (order > MAX_PAGE_ORDER)
		order = -E2BIG;
	else
		order = kho_claim_block(page);
	spin_unlock(&kho_in.lock);
	if (order < 0)
		return NULL;
	/*
	 * A folio lies in one zone. A block preserved across what is a zone
	 * boundary in this kernel (movablecore=, mem=) cannot become one: it
	 * stays reserved, restored to nobody.
	 */
	if (page_zone(page) != page_zone(nth_page(page, (1UL << order) - 1))) {
		pr_warn("cannot restore the folio at %pa: it crosses a zone boundary\n",
			&phys);
		return NULL;
	}

	kho_init_block_pages(page, order, true);
	return page_folio(page);
}
EXPORT_SYMBOL_GPL(kho_restore_folio);

/**
 * kho_in_block_order - is there an unrestored preserved block at @phys?
 * @phys: physical address
 *
 * Works from kho_memory_init() on, before memory is given to the page
 * allocator (the memory map is initialised by then: KHO excludes
 * DEFERRED_STRUCT_PAGE_INIT): a user whose hardware may still be reading
 * memory the previous kernel left it (an IOMMU's tables) can check, that
 * early, that the memory was preserved, without taking it back.
 *
 * Return: the order of the block that starts at @phys, or -ENOENT.
 */
int kho_in_block_order(phys_addr_t phys)
{
	struct page *page;
	unsigned long priv;

	if (!kho_in.fdt_phys || !PAGE_ALIGNED(phys))
		return -ENOENT;
	page = pfn_to_online_page(PHYS_PFN(phys));
	if (!page)
		return -ENOENT;
	spin_lock(&kho_in.lock);
	priv = page_private(page);
	spin_unlock(&kho_in.lock);
	return priv >> 32 == KHO_PAGE_MAGIC ? priv & KHO_PAGE_ORDER_MASK : -ENOENT;
}

/* The order kho_preserve_phys() used for the block at @pfn. */
static unsigned int kho_range_order(unsigned long pfn, unsigned long end)
{
	unsigned int order = ilog2(end - pfn);

	if (pfn)
		order = min_t(unsigned int, order, __ffs(pfn));
	return min_t(unsigned int, order, KHO_MAX_ORDER);
}

/**
 * kho_restore_phys - take back a range preserved by the previous kernel
 * @phys: physical address, as passed to kho_preserve_phys()
 * @size: size in bytes, as passed to kho_preserve_phys()
 *
 * The pages of the range become ordinary order-0 pages with one
 * reference each, counted as managed memory again, which the caller owns
 * and may free with __free_page(). Either the whole range is restored or
 * nothing is.
 *
 * The handover records blocks, not ranges: the range is accepted if it
 * splits into the same preserved blocks as kho_preserve_phys() made, which
 * is true of the range it was given and of any sub-range that happens to
 * start and end on the same block boundaries.
 *
 * Return: 0 on success; -ENOENT if those blocks were not all preserved,
 * or were already restored; -EINVAL for an unaligned or empty range.
 */
int kho_restore_phys(phys_addr_t phys, size_t size)
{
	unsigned long pfn, end, cur;
	int err = 0;

	if (!kho_in.fdt_phys)
		return -ENOENT;
	if (!size || !PAGE_ALIGNED(phys) || !PAGE_ALIGNED(size) ||
	    phys + size < phys)
		return -EINVAL;
	pfn = PHYS_PFN(phys);
	end = pfn + PHYS_PFN(size);
	for (cur = pfn; cur < end; cur++)
		if (!pfn_to_online_page(cur))
			return -ENOENT;

	spin_lock(&kho_in.lock);
	for (cur = pfn; cur < end; cur += 1UL << kho_range_order(cur, end)) {
		if (page_private(pfn_to_page(cur)) !=
		    (KHO_PAGE_MAGIC << 32 | kho_range_order(cur, end))) {
			err = -ENOENT;
			break;
		}
	}
	for (cur = pfn; !err && cur < end;
	     cur += 1UL << kho_range_order(cur, end))
		kho_claim_block(pfn_to_page(cur));
	spin_unlock(&kho_in.lock);
	if (err)
		return err;

	for (cur = pfn; cur < end; cur += 1UL << kho_range_order(cur, end))
		kho_init_block_pages(pfn_to_page(cur), kho_range_order(cur, end),
				     false);
	return 0;
}
EXPORT_SYMBOL_GPL(kho_restore_phys);

/**
 * kho_retrieve_subtree - find a subtree the previous kernel published
 * @name: the name passed to kho_add_subtree()
 * @phys: returns the physical address of the subtree's FDT blob
 *
 * The blob is preserved memory: restore it (kho_restore_folio() or
 * kho_restore_phys()) before using it, and validate what it says.
 *
 * Return: 0 on success; -ENOENT if there is no handover or no subtree of
 * that name; -EINVAL for a malformed node.
 */
int kho_retrieve_subtree(const char *name, phys_addr_t *phys)
{
	const void *fdt;
	const u64 *val;
	int off, len;

	if (!kho_in.fdt_phys)
		return -ENOENT;
	if (!name || !phys)
		return -EINVAL;
	fdt = phys_to_virt(kho_in.fdt_phys);
	off = fdt_subnode_offset(fdt, 0, name);
	if (off < 0)
		return -ENOENT;
	val = fdt_getprop(fdt, off, PROP_SUB_FDT, &len);
	if (!val || len != sizeof(*val))
		return -EINVAL;
	*phys = get_unaligned(val);
	return 0;
}
EXPORT_SYMBOL_GPL(kho_retrieve_subtree);

/**
 * kho_in_fdt - the root FDT handed over by the previous kernel
 *
 * Return: the FDT, or NULL if there was no handover or it was rejected.
 */
const void *kho_in_fdt(void)
{
	return kho_in.fdt_phys ? phys_to_virt(kho_in.fdt_phys) : NULL;
}

/* Outgoing: the state this kernel hands over. */

struct kho_subtree {
	struct list_head list;
	const char *name;
	void *fdt;
};

/*
 * The notifier data of KEXEC_KHO_FINALIZE: the root FDT being written.
 * Only valid while the FINALIZE notifiers run.
 */
struct kho_serialization {
	void *fdt;
	struct list_head subtrees;
};

static struct kho_out {
	/* finalize and abort, the root FDT and the subtree list */
	struct mutex lock;
	struct blocking_notifier_head chain;
	struct kho_mem_track track;
	struct kho_serialization ser;
	struct page *fdt_page;
	bool finalized;
	/*
	 * Memory outside the direct map to hand over, under @unmapped_lock,
	 * a leaf lock: its owners preserve it under locks of their own that
	 * FINALIZE notifiers take. Frozen once written to the root FDT.
	 */
	struct mutex unmapped_lock;
	struct range unmapped[KHO_UNMAPPED_MAX];
	unsigned int nr_unmapped;
	bool unmapped_frozen;
} kho_out = {
	.lock = __MUTEX_INITIALIZER(kho_out.lock),
	.unmapped_lock = __MUTEX_INITIALIZER(kho_out.unmapped_lock),
	.chain = BLOCKING_NOTIFIER_INIT(kho_out.chain),
	.track = {
		.lock = __MUTEX_INITIALIZER(kho_out.track.lock),
		.orders = XARRAY_INIT(kho_out.track.orders, 0),
	},
	.ser.subtrees = LIST_HEAD_INIT(kho_out.ser.subtrees),
};

/**
 * register_kho_notifier - be told when the handover is built or abandoned
 * @nb: notifier block, called with an &enum kho_event and, for
 *	%KEXEC_KHO_FINALIZE, the &struct kho_serialization to pass to
 *	kho_add_subtree()
 *
 * A FINALIZE callback that fails (notifier_from_errno()) fails the whole
 * finalization; the callbacks that had succeeded get ABORT.
 *
 * Return: 0 on success, error code on failure.
 */
int register_kho_notifier(struct notifier_block *nb)
{
	return blocking_notifier_chain_register(&kho_out.chain, nb);
}
EXPORT_SYMBOL_GPL(register_kho_notifier);

/**
 * unregister_kho_notifier - undo register_kho_notifier()
 * @nb: notifier block
 *
 * Return: 0 on success, -ENOENT if @nb was not registered.
 */
int unregister_kho_notifier(struct notifier_block *nb)
{
	return blocking_notifier_chain_unregister(&kho_out.chain, nb);
}
EXPORT_SYMBOL_GPL(unregister_kho_notifier);

static int kho_check_preservable(phys_addr_t phys, phys_addr_t size)
{
	if (!kho_enable)
		return -EOPNOTSUPP;
	/* Scratch memory is the next kernel's to allocate from. */
	if (kho_in_scratch(phys, size))
		return -EINVAL;
	return 0;
}

/**
 * kho_preserve_folio - preserve a folio across kexec
 * @folio: the folio
 *
 * The whole folio, and its order, are handed over: the next kernel gets
 * it back with kho_restore_folio().
 *
 * Return: 0 on success; -EEXIST if part of it is already preserved;
 * -EBUSY once the handover is finalized; -EINVAL for a folio in scratch
 * memory (only movable allocations are); -EOPNOTSUPP without kho=on;
 * -ENOMEM.
 */
int kho_preserve_folio(struct folio *folio)
{
	int err = kho_check_preservable(PFN_PHYS(folio_pfn(folio)),
					folio_size(folio));

	return err ?: kho_track_preserve(&kho_out.track, folio_pfn(folio),
					 folio_order(folio));
}
EXPORT_SYMBOL_GPL(kho_preserve_folio);

/**
 * kho_unpreserve_folio - undo kho_preserve_folio()
 * @folio: the folio
 *
 * Return: 0 on success; -ENOENT if the folio was not preserved; -EBUSY
 * once the handover is finalized; -EOPNOTSUPP without kho=on.
 */
int kho_unpreserve_folio(struct folio *folio)
{
	if (!kho_enable)
		return -EOPNOTSUPP;
	return kho_track_unpreserve(&kho_out.track, folio_pfn(folio),
				    folio_order(folio));
}
EXPORT_SYMBOL_GPL(kho_unpreserve_folio);

static int kho_range_pfns(phys_addr_t phys, size_t size, unsigned long *pfn,
			  unsigned long *nr)
{
	if (!size || !PAGE_ALIGNED(phys) || !PAGE_ALIGNED(size) ||
	    phys + size < phys)
		return -EINVAL;
	*pfn = PHYS_PFN(phys);
	*nr = size >> PAGE_SHIFT;
	return 0;
}

/**
 * kho_preserve_phys - preserve a physically contiguous range across kexec
 * @phys: physical address, page aligned
 * @size: size in bytes, page aligned
 *
 * The range is recorded as the fewest naturally aligned blocks; either all
 * of it is preserved or, on failure, none of it. The next kernel keeps it
 * reserved; its owner takes it back with kho_restore_phys().
 *
 * Return: 0 on success; -EINVAL for an unaligned or empty range, or one in
 * scratch memory; -EEXIST if part of it is already preserved; -EBUSY once
 * the handover is finalized; -EOPNOTSUPP without kho=on; -ENOMEM.
 */
int kho_preserve_phys(phys_addr_t phys, size_t size)
{
	unsigned long pfn, nr;
	int err;

	err = kho_range_pfns(phys, size, &pfn, &nr) ?:
	      kho_check_preservable(phys, size);
	return err ?: kho_track_preserve_range(&kho_out.track, pfn, nr);
}
EXPORT_SYMBOL_GPL(kho_preserve_phys);

/**
 * kho_unpreserve_phys - undo kho_preserve_phys()
 * @phys: physical address, as passed to kho_preserve_phys()
 * @size: size in bytes, as passed to kho_preserve_phys()
 *
 * As with kho_restore_phys(), the range must split into blocks that are
 * all preserved.
 *
 * Return: 0 on success; -ENOENT, changing nothing, if they are not;
 * -EBUSY once the handover is finalized; -EINVAL; -EOPNOTSUPP without
 * kho=on.
 */
int kho_unpreserve_phys(phys_addr_t phys, size_t size)
{
	unsigned long pfn, nr;
	int err;

	if (!kho_enable)
		return -EOPNOTSUPP;
	err = kho_range_pfns(phys, size, &pfn, &nr);
	return err ?: kho_track_unpreserve_range(&kho_out.track, pfn, nr);
}
EXPORT_SYMBOL_GPL(kho_unpreserve_phys);

/**
 * kho_preserve_unmapped - hand memory outside the direct map over
 * @phys: physical address, page aligned
 * @size: size in bytes, page aligned
 *
 * For memory that has no struct pages and is not in the direct map, such
 * as a carve-out made at boot: the next kernel takes it out of its memory
 * map before it builds its direct map, and its owner there takes it back
 * with kho_claim_unmapped(). It stays preserved until
 * kho_unpreserve_unmapped(), through any number of finalizations.
 *
 * Return: 0 on success; -EINVAL for an unaligned or empty range, or one
 * that is system RAM or scratch memory; -EEXIST if it overlaps a range
 * already preserved or handed over and not claimed; -ENOSPC past
 * KHO_UNMAPPED_MAX ranges; -EBUSY from the start of finalization (its
 * notifiers included) until an abort; -EOPNOTSUPP without kho=on.
 */
int kho_preserve_unmapped(phys_addr_t phys, phys_addr_t size)
{
	struct range r = { phys, phys + size - 1 };
	unsigned int i;
	int err = 0;

	if (!kho_enable)
		return -EOPNOTSUPP;
	if (!size || !PAGE_ALIGNED(phys) || !PAGE_ALIGNED(size) ||
	    phys + size < phys || kho_in_scratch(phys, size) ||
	    region_intersects(phys, size, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT)
		return -EINVAL;

	mutex_lock(&kho_out.unmapped_lock);
	if (kho_out.unmapped_frozen) {
		err = -EBUSY;
		goto out;
	}
	for (i = 0; i < kho_out.nr_unmapped; i++) {
		if (kho_out.unmapped[i].start <= r.end &&
		    r.start <= kho_out.unmapped[i].end) {
			err = -EEXIST;
			goto out;
		}
	}
	/* Handed over to this kernel and not claimed: handed over again */
	for (i = 0; i < kho_in.nr_unmapped; i++) {
		if (!test_bit(i, kho_in.claimed) &&
		    kho_in.unmapped[i].start <= r.end &&
		    r.start <= kho_in.unmapped[i].end) {
			err = -EEXIST;
			goto out;
		}
	}
	if (kho_out.nr_unmapped == KHO_UNMAPPED_MAX)
		err = -ENOSPC;
	else
		kho_out.unmapped[kho_out.nr_unmapped++] = r;
out:
	mutex_unlock(&kho_out.unmapped_lock);
	return err;
}
EXPORT_SYMBOL_GPL(kho_preserve_unmapped);

/**
 * kho_unpreserve_unmapped - undo kho_preserve_unmapped()
 * @phys: physical address, as passed to kho_preserve_unmapped()
 * @size: size in bytes, as passed to kho_preserve_unmapped()
 *
 * Return: 0 on success; -ENOENT if no such range is preserved; -EBUSY
 * once the handover is finalized; -EOPNOTSUPP without kho=on.
 */
int kho_unpreserve_unmapped(phys_addr_t phys, phys_addr_t size)
{
	unsigned int i;
	int err = -ENOENT;

	if (!kho_enable)
		return -EOPNOTSUPP;
	mutex_lock(&kho_out.unmapped_lock);
	for (i = 0; i < kho_out.nr_unmapped; i++) {
		if (kho_out.unmapped[i].start != phys ||
		    range_len(&kho_out.unmapped[i]) != size)
			continue;
		if (kho_out.unmapped_frozen) {
			err = -EBUSY;
			break;
		}
		kho_out.unmapped[i] = kho_out.unmapped[--kho_out.nr_unmapped];
		err = 0;
		break;
	}
	mutex_unlock(&kho_out.unmapped_lock);
	return err;
}
EXPORT_SYMBOL_GPL(kho_unpreserve_unmapped);

/**
 * kho_claim_unmapped - take back memory handed over outside the direct map
 * @phys: physical address, as the previous kernel passed it to
 *	kho_preserve_unmapped()
 * @size: size in bytes, likewise
 *
 * The range was kept out of this kernel's memory map since early boot.
 * Claimed, it is the caller's, and stays preserved for the next kernel as
 * if the caller had passed it to kho_preserve_unmapped(), with no window
 * in which it is not; kho_unpreserve_unmapped() lets it go. A range nobody
 * claims is handed over again at every finalization, so that memory
 * whose owner could not take it back is never given to anyone else.
 *
 * Return: 0 on success; -ENOENT if no such range came with the handover;
 * -EALREADY if it was claimed already; -EBUSY while the handover is
 * finalized; -ENOSPC if KHO_UNMAPPED_MAX ranges are preserved already.
 */
int kho_claim_unmapped(phys_addr_t phys, phys_addr_t size)
{
	unsigned int i;

	guard(mutex)(&kho_out.unmapped_lock);
	for (i = 0; i < kho_in.nr_unmapped; i++) {
		if (kho_in.unmapped[i].start != phys ||
		    range_len(&kho_in.unmapped[i]) != size)
			continue;
		if (test_bit(i, kho_in.claimed))
			return -EALREADY;
		if (kho_out.unmapped_frozen)
			return -EBUSY;
		if (kho_out.nr_unmapped == KHO_UNMAPPED_MAX)
			return -ENOSPC;
		kho_out.unmapped[kho_out.nr_unmapped++] = kho_in.unmapped[i];
		set_bit(i, kho_in.claimed);
		return 0;
	}
	return -ENOENT;
}
EXPORT_SYMBOL_GPL(kho_claim_unmapped);

static bool kho_subtree_name_ok(const char *name)
{
	size_t len = strnlen(name, KHO_SUBTREE_NAME_MAX + 1);
	size_t i;

	if (!len || len > KHO_SUBTREE_NAME_MAX)
		return false;
	/* The characters of a device tree node name, no unit address. */
	for (i = 0; i < len; i++)
		if (!isalnum(name[i]) && !strchr(",._+-", name[i]))
			return false;
	return true;
}

static int kho_fdt_errno(int fdt_err)
{
	return fdt_err == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;
}

/**
 * kho_fdt_add_subtree - add a subtree's node to the root FDT being written
 * @fdt: the root FDT, in libfdt's sequential-write state
 * @name: the node's name
 * @phys: the subtree's address, its property "fdt"
 *
 * All or nothing: a node begun and not finished (no room left for its
 * property) would stay open, holding whatever is written after it, and
 * finalize would hand the broken blob over. On failure the structure
 * block is cut back to where it was, which undoes the node (a string
 * added for it stays, unused).
 *
 * Return: 0, or the libfdt error.
 */
int kho_fdt_add_subtree(void *fdt, const char *name, u64 phys)
{
	int size = fdt_size_dt_struct(fdt);
	int err;

	err = fdt_begin_node(fdt, name) ?:
	      fdt_property(fdt, PROP_SUB_FDT, &phys, sizeof(phys)) ?:
	      fdt_end_node(fdt);
	if (err)
		fdt_set_size_dt_struct(fdt, size);
	return err;
}

/**
 * kho_add_subtree - publish a subtree in the handover FDT
 * @ser: the notifier data of %KEXEC_KHO_FINALIZE
 * @name: node name, unique, of the characters a device tree node name may
 *	have
 * @fdt: the subtree: a complete FDT blob in preserved memory
 *
 * Adds node @name, whose property "fdt" holds the physical address of @fdt,
 * to the root of the handover FDT. The next kernel finds the address again
 * with kho_retrieve_subtree(). The pages of @fdt must be preserved first
 * (kho_preserve_folio() or kho_preserve_phys()); only call this from a
 * FINALIZE notifier.
 *
 * Return: 0 on success; -EINVAL outside FINALIZE, for a bad name or blob,
 * or a blob in memory that is not preserved; -EEXIST for a name already
 * used; -ENOSPC when the root FDT is full; -ENOMEM.
 */
int kho_add_subtree(struct kho_serialization *ser, const char *name, void *fdt)
{
	phys_addr_t phys = virt_to_phys(fdt), p;
	struct kho_subtree *sub;
	u64 addr = phys;
	int err;

	if (ser != &kho_out.ser || !ser->fdt)
		return -EINVAL;
	lockdep_assert_held(&kho_out.lock);

	if (!name || !kho_subtree_name_ok(name) || fdt_check_header(fdt))
		return -EINVAL;
	for (p = round_down(phys, PAGE_SIZE); p < phys + fdt_totalsize(fdt);
	     p += PAGE_SIZE)
		if (!kho_track_is_preserved(&kho_out.track, PHYS_PFN(p)))
			return -EINVAL;
	list_for_each_entry(sub, &ser->subtrees, list)
		if (!strcmp(sub->name, name))
			return -EEXIST;

	sub = kzalloc(sizeof(*sub), GFP_KERNEL);
	if (!sub)
		return -ENOMEM;
	sub->name = kstrdup(name, GFP_KERNEL);
	if (!sub->name) {
		kfree(sub);
		return -ENOMEM;
	}
	sub->fdt = fdt;

	err = kho_fdt_add_subtree(ser->fdt, name, addr);
	if (err) {
		kfree(sub->name);
		kfree(sub);
		return kho_fdt_errno(err);
	}
	list_add_tail(&sub->list, &ser->subtrees);
	return 0;
}
EXPORT_SYMBOL_GPL(kho_add_subtree);

static void kho_free_subtrees(void)
{
	struct kho_subtree *sub, *tmp;

	list_for_each_entry_safe(sub, tmp, &kho_out.ser.subtrees, list) {
		list_del(&sub->list);
		kfree(sub->name);
		kfree(sub);
	}
}

/*
 * The next kernel allocates from the scratch areas before it reads the
 * chunk list, and rejects a handover whose chunks or bitmaps are there.
 * The tracker keeps them out of scratch; check anyway, so that such a
 * handover fails now rather than on the next boot.
 */
static int kho_check_out_meta(struct khoser_mem_chunk *chunk)
{
	phys_addr_t phys;
	unsigned int i;

	while (chunk) {
		phys = virt_to_phys(chunk);
		if (kho_in_scratch(phys, PAGE_SIZE))
			goto bad;
		for (i = 0; i < chunk->hdr.num_elms; i++) {
			phys = chunk->bitmaps[i].bitmap;
			if (kho_in_scratch(phys, KHO_BITMAP_SIZE))
				goto bad;
		}
		chunk = chunk->hdr.next ? phys_to_virt(chunk->hdr.next) : NULL;
	}
	return 0;
bad:
	pr_err("handover metadata at %pa is in scratch memory\n", &phys);
	return -EINVAL;
}

/*
 * The unmapped ranges of the handover: preserved, and unclaimed incoming.
 * Once written, they are frozen until kho_unmapped_thaw().
 */
static int kho_unmapped_prop(void *fdt)
{
	unsigned int i, n = 0;
	u64 *val = NULL;
	int err;

	guard(mutex)(&kho_out.unmapped_lock);
	for (i = 0; i < kho_in.nr_unmapped; i++)
		n += !test_bit(i, kho_in.claimed);
	n += kho_out.nr_unmapped;
	if (n > KHO_UNMAPPED_MAX)
		return -ENOSPC;
	if (n) {
		err = fdt_property_placeholder(fdt, PROP_UNMAPPED_MEMORY,
					       n * 2 * sizeof(u64),
					       (void **)&val);
		if (err)
			return kho_fdt_errno(err);
	}
	for (i = 0; i < kho_out.nr_unmapped; i++, val += 2) {
		put_unaligned(kho_out.unmapped[i].start, &val[0]);
		put_unaligned(range_len(&kho_out.unmapped[i]), &val[1]);
	}
	for (i = 0; i < kho_in.nr_unmapped; i++) {
		if (test_bit(i, kho_in.claimed))
			continue;
		put_unaligned(kho_in.unmapped[i].start, &val[0]);
		put_unaligned(range_len(&kho_in.unmapped[i]), &val[1]);
		val += 2;
	}
	kho_out.unmapped_frozen = true;
	return 0;
}

/* Finalization failed or was aborted: unmapped ranges may change again */
static void kho_unmapped_thaw(void)
{
	mutex_lock(&kho_out.unmapped_lock);
	kho_out.unmapped_frozen = false;
	mutex_unlock(&kho_out.unmapped_lock);
}

static int kho_finalize(void)
{
	void *fdt = page_address(kho_out.fdt_page);
	unsigned long fdt_pfn = page_to_pfn(kho_out.fdt_page);
	phys_addr_t first;
	u64 *mem_map;
	int err;

	lockdep_assert_held(&kho_out.lock);

	err = fdt_create(fdt, PAGE_SIZE) ?:
	      fdt_finish_reservemap(fdt) ?:
	      fdt_begin_node(fdt, "") ?:
	      fdt_property_string(fdt, "compatible", KHO_FDT_COMPATIBLE) ?:
	      /* Reserved now: properties come before the subtree nodes. */
	      fdt_property_placeholder(fdt, PROP_PRESERVED_MEMORY_MAP,
				       sizeof(*mem_map), (void **)&mem_map);
	if (err)
		return kho_fdt_errno(err);
	err = kho_unmapped_prop(fdt);
	if (err)
		return err;

	err = kho_track_preserve(&kho_out.track, fdt_pfn, 0);
	if (err)
		return err;

	kho_out.ser.fdt = fdt;
	err = blocking_notifier_call_chain_robust(&kho_out.chain,
						  KEXEC_KHO_FINALIZE,
						  KEXEC_KHO_ABORT,
						  &kho_out.ser);
	kho_out.ser.fdt = NULL;
	err = notifier_to_errno(err);
	if (err)
		goto unpreserve;

	err = kho_track_freeze(&kho_out.track, &first);
	if (err)
		goto abort;
	err = kho_check_out_meta(kho_out.track.chunks);
	if (err) {
		kho_track_thaw(&kho_out.track);
		goto abort;
	}
	*mem_map = first;

	err = fdt_end_node(fdt) ?: fdt_finish(fdt);
	if (err) {
		err = kho_fdt_errno(err);
		kho_track_thaw(&kho_out.track);
		goto abort;
	}
	return 0;

abort:
	blocking_notifier_call_chain(&kho_out.chain, KEXEC_KHO_ABORT,
				     &kho_out.ser);
unpreserve:
	WARN_ON_ONCE(kho_track_unpreserve(&kho_out.track, fdt_pfn, 0));
	kho_free_subtrees();
	return err;
}

#if IS_ENABLED(CONFIG_TEST_KEXEC_HANDOVER)
/*
 * Damage done to the finalized handover by kho_test_corrupt(), undone by
 * the abort so that the chunk list can be freed.
 */
static struct {
	u64 *where;
	u64 old;
	/* bad-ranges: the descriptors added, and the bitmap page */
	struct khoser_mem_chunk *chunk;
	u32 old_elms;
	struct page *page;
	/* bad-ranges: the scratch list a kexec image carries, one area more */
	struct kho_scratch scratch[KHO_SCRATCH_MAX];
	unsigned int scratch_cnt;
} kho_damage;

static void kho_damage_do(u64 *where, u64 val)
{
	kho_damage.where = where;
	kho_damage.old = *where;
	*where = val;
}

static void kho_damage_undo(void)
{
	if (kho_damage.where)
		*kho_damage.where = kho_damage.old;
	kho_damage.where = NULL;
	if (kho_damage.chunk)
		kho_damage.chunk->hdr.num_elms = kho_damage.old_elms;
	kho_damage.chunk = NULL;
	if (kho_damage.page)
		__free_page(kho_damage.page);
	kho_damage.page = NULL;
	kho_damage.scratch_cnt = 0;
}

/*
 * A scratch area where there is no memory at all, which the next kernel
 * must drop and, before that, its decompressor must not place it in:
 * 256 GiB of nothing, from the first 512 GiB boundary above the end of
 * memory (within 40 physical address bits on a machine of less than
 * 512 GiB, as a test VM is).
 */
static int kho_damage_scratch(void)
{
	struct kho_scratch *bad;

	if (kho_scratch_cnt >= KHO_SCRATCH_MAX)
		return -ENOSPC;
	memcpy(kho_damage.scratch, kho_scratch,
	       kho_scratch_cnt * sizeof(*kho_scratch));
	bad = &kho_damage.scratch[kho_scratch_cnt];
	bad->addr = round_up(PFN_PHYS(max_pfn), SZ_512G);
	bad->size = SZ_256G;
	kho_damage.scratch_cnt = kho_scratch_cnt + 1;
	return 0;
}

/* Load the damaged scratch list, if there is one, into a kexec image */
static void kho_damage_kimage(struct kexec_buf *buf)
{
	if (!kho_damage.scratch_cnt)
		return;
	buf->buffer = kho_damage.scratch;
	buf->bufsz = kho_damage.scratch_cnt * sizeof(*kho_damage.scratch);
	buf->memsz = buf->bufsz;
}

/*
 * Two bad parts in a sound list, which the next kernel must drop alone:
 * a bitmap in scratch memory, and a bitmap of its own (in a page outside
 * scratch, never preserved, as the next kernel may read) whose one block
 * lies past the end of memory. Added to the last chunk of order 0. And a
 * third, in the list of scratch areas: one outside memory.
 */
static int kho_damage_ranges(struct khoser_mem_chunk *chunk)
{
	const phys_addr_t span = (phys_addr_t)PAGE_SIZE * KHO_BITMAP_BITS;
	struct khoser_mem_chunk *last = NULL;
	struct page *page;
	u32 n;

	for (; chunk; chunk = chunk->hdr.next ?
		      phys_to_virt(chunk->hdr.next) : NULL)
		if (!chunk->hdr.order)
			last = chunk;
	if (!last || last->hdr.num_elms + 2 > KHOSER_BITMAPS_PER_CHUNK)
		return -ENOENT;
	if (kho_scratch_cnt >= KHO_SCRATCH_MAX)
		return -ENOSPC;
	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!page)
		return -ENOMEM;
	if (kho_in_scratch(page_to_phys(page), PAGE_SIZE)) {
		__free_page(page);
		return -EAGAIN;
	}
	/* The bitmap's first block */
	__set_bit(0, page_address(page));

	n = last->hdr.num_elms;
	kho_damage.chunk = last;
	kho_damage.old_elms = n;
	kho_damage.page = page;
	last->bitmaps[n].phys_start = 0;
	last->bitmaps[n].bitmap = kho_scratch[0].addr;
	last->bitmaps[n + 1].phys_start = round_up(PFN_PHYS(max_pfn), span) +
					  span;
	last->bitmaps[n + 1].bitmap = page_to_phys(page);
	last->hdr.num_elms = n + 2;
	return kho_damage_scratch();
}

/**
 * kho_test_corrupt - damage the finalized handover, for lib/test_kho.c
 * @how: "compatible" or "truncated" to damage the root FDT; "chunk-loop"
 *	or "chunk-outside" to break the chunk list; "bitmap-scratch" or
 *	"bad-ranges" to add bad parts to a sound one (two in the chunk
 *	list, a scratch area outside memory in the list that a kexec image
 *	loaded from now on carries); "subtree:NAME" to point
 *	subtree NAME at memory that is not preserved
 *
 * Lets the KHO test check, across a real kexec, that the next kernel
 * rejects a broken handover, or drops the bad parts of a sound one, with
 * the right messages and memory policy. Aborting the handover repairs it.
 *
 * Return: 0 on success; -ENOENT if not finalized or there is no chunk to
 * damage (or no room in it); -EBUSY if already damaged; -EINVAL for an
 * unknown @how; -ENOMEM, or -EAGAIN if the page for a bitmap came from
 * scratch memory; -ENOSPC if the scratch list has no room for one more.
 */
int kho_test_corrupt(const char *how)
{
	struct khoser_mem_chunk *chunk;
	void *fdt;
	int err = 0;

	mutex_lock(&kho_out.lock);
	chunk = kho_out.track.chunks;
	fdt = kho_out.fdt_page ? page_address(kho_out.fdt_page) : NULL;
	if (!kho_out.finalized) {
		err = -ENOENT;
	} else if (kho_damage.where || kho_damage.chunk) {
		err = -EBUSY;
	} else if (!strcmp(how, "compatible")) {
		if (fdt_setprop_inplace(fdt, 0, "compatible", "kho-v0", 7))
			err = -EINVAL;
	} else if (!strcmp(how, "truncated")) {
		fdt_set_totalsize(fdt, 2 * PAGE_SIZE);
	} else if (!strncmp(how, "subtree:", 8)) {
		/* Its owner must refuse it, and only it. */
		u64 bad = kho_scratch[0].addr;
		int node = fdt_subnode_offset(fdt, 0, how + 8);

		if (node < 0 || fdt_setprop_inplace(fdt, node, PROP_SUB_FDT,
						    &bad, sizeof(bad)))
			err = -ENOENT;
	} else if (strcmp(how, "chunk-loop") && strcmp(how, "chunk-outside") &&
		   strcmp(how, "bitmap-scratch") && strcmp(how, "bad-ranges")) {
		err = -EINVAL;
	} else if (!chunk || !chunk->hdr.num_elms) {
		err = -ENOENT;
	} else if (!strcmp(how, "bad-ranges")) {
		err = kho_damage_ranges(chunk);
	} else if (!strcmp(how, "chunk-loop")) {
		kho_damage_do(&chunk->hdr.next, virt_to_phys(chunk));
	} else if (!strcmp(how, "chunk-outside")) {
		kho_damage_do(&chunk->hdr.next, PFN_PHYS(max_pfn) + SZ_1G);
	} else {
		kho_damage_do(&chunk->bitmaps[0].bitmap, kho_scratch[0].addr);
	}
	if (!err)
		pr_warn("test: damaged the handover: %s\n", how);
	mutex_unlock(&kho_out.lock);
	return err;
}
EXPORT_SYMBOL_GPL(kho_test_corrupt);
#else
static inline void kho_damage_undo(void) { }
static inline void kho_damage_kimage(struct kexec_buf *buf) { }
#endif

static void kho_debugfs_show_out(void)
{
	struct kho_subtree *sub;
	int err;

	err = kho_debugfs_out_add("fdt", page_address(kho_out.fdt_page));
	list_for_each_entry(sub, &kho_out.ser.subtrees, list)
		err = err ?: kho_debugfs_out_add(sub->name, sub->fdt);
	if (err)
		pr_warn("cannot show the handover in debugfs: %d\n", err);
}

static int kho_abort(void)
{
	int err;

	lockdep_assert_held(&kho_out.lock);

	kho_damage_undo();
	kho_track_thaw(&kho_out.track);
	err = blocking_notifier_call_chain(&kho_out.chain, KEXEC_KHO_ABORT,
					   &kho_out.ser);
	err = notifier_to_errno(err);
	if (err)
		pr_warn("a KHO user failed to abort: %d\n", err);
	WARN_ON_ONCE(kho_track_unpreserve(&kho_out.track,
					  page_to_pfn(kho_out.fdt_page), 0));
	kho_free_subtrees();
	return 0;
}

/*
 * The loaded kexec image and the handover must agree: an image loaded
 * before finalization does not carry the handover, and one that carries
 * it must not lose it to an abort. Either way, unload the image first.
 */
static int kho_check_loaded_image(bool finalize)
{
	int err = 0;

	if (!kexec_trylock())
		return -EBUSY;
	if (kexec_image && (finalize || kexec_image->kho.fdt))
		err = -EBUSY;
	kexec_unlock();
	return err;
}

/**
 * kho_set_finalized - finalize or abort the handover
 * @finalize: true to finalize, false to abort
 *
 * Finalizing runs every FINALIZE notifier, writes the root FDT and freezes
 * preservation: from then on, preserving or unpreserving memory fails with
 * -EBUSY, and kexec_file_load() images carry the handover. Aborting undoes
 * all of that.
 *
 * Return: 0 on success; -EEXIST if already finalized, -ENOENT if there is
 * nothing to abort; -EBUSY while a kexec image is loaded (unload it
 * first); -EOPNOTSUPP without kho=on; or the error that stopped
 * finalization, which then changed nothing.
 */
int kho_set_finalized(bool finalize)
{
	int err;

	if (!kho_enable || !kho_out.fdt_page)
		return -EOPNOTSUPP;

	mutex_lock(&kho_out.lock);
	if (finalize == kho_out.finalized) {
		err = finalize ? -EEXIST : -ENOENT;
	} else if (kho_check_loaded_image(finalize)) {
		err = -EBUSY;
	} else if (finalize) {
		err = kho_finalize();
		if (err) {
			kho_unmapped_thaw();
			pr_err("finalization failed: %d\n", err);
		} else {
			kho_debugfs_show_out();
		}
	} else {
		/* The subtrees are freed by their owners on abort. */
		kho_debugfs_out_clear();
		err = kho_abort();
		kho_unmapped_thaw();
	}
	if (!err)
		kho_out.finalized = finalize;
	mutex_unlock(&kho_out.lock);
	return err;
}

/**
 * kho_is_finalized - has the handover been finalized?
 *
 * Return: true between a successful kho_set_finalized(true) and the abort.
 */
bool kho_is_finalized(void)
{
	bool ret;

	mutex_lock(&kho_out.lock);
	ret = kho_out.finalized;
	mutex_unlock(&kho_out.lock);
	return ret;
}

/**
 * kho_kexec_hands_over - does the kexec in progress carry the handover?
 *
 * For what runs at the kexec (device and IOMMU shutdown) and keeps
 * something going for the next kernel only if that kernel is told about
 * it: true during a kexec into an image that carries the finalized
 * handover, one loaded with kexec_file_load() after finalize. An image
 * loaded with kexec_load(), or before finalize, or a handover aborted
 * after the image was loaded, hands nothing over.
 *
 * Return: true if it does.
 */
bool kho_kexec_hands_over(void)
{
	/* At the kexec nothing else runs: no lock */
	return kexec_in_progress && kexec_image && kexec_image->kho.fdt &&
	       READ_ONCE(kho_out.finalized);
}
EXPORT_SYMBOL_GPL(kho_kexec_hands_over);

/**
 * kho_fill_kimage - attach the handover to a kexec_file image
 * @image: the image being loaded, with the kexec lock held
 *
 * An image loaded for a normal kexec while the handover is finalized
 * carries it: the address of the root FDT and, in a segment of its own,
 * the array of scratch areas. All segments of such an image are placed in
 * scratch memory. Crash kernels never carry a handover.
 *
 * Return: 0 on success, error code on failure.
 */
int kho_fill_kimage(struct kimage *image)
{
	struct kexec_buf buf = {
		.image = image,
		.buffer = kho_scratch,
		.bufsz = kho_scratch_cnt * sizeof(*kho_scratch),
		.memsz = kho_scratch_cnt * sizeof(*kho_scratch),
		.mem = KEXEC_BUF_MEM_UNKNOWN,
		.buf_align = PAGE_SIZE,
		.buf_max = ULONG_MAX,
		.top_down = true,
	};
	int err = 0;

	if (!kho_enable || image->type == KEXEC_TYPE_CRASH)
		return 0;

	mutex_lock(&kho_out.lock);
	if (kho_out.finalized) {
		/* Set first: kexec_add_buffer() then places it in scratch. */
		image->kho.fdt = page_to_phys(kho_out.fdt_page);
		kho_damage_kimage(&buf);
		err = kexec_add_buffer(&buf);
		if (err)
			image->kho.fdt = 0;
		else
			image->kho.scratch = &image->segment[image->nr_segments - 1];
	}
	mutex_unlock(&kho_out.lock);
	return err;
}

/**
 * kho_check_kimage - refuse an image whose kernel could not boot in scratch
 * @image: a kexec_file image, its segments all placed
 *
 * A kernel booted with a handover allocates only from the scratch areas
 * until it has read it, and runs out of memory before it has a console if
 * they are too small: it hangs with no word. Refuse the image instead
 * when what its segments leave of the scratch areas is less than what
 * this kernel allocated before that point, plus what reading this
 * handover takes (the runs array and memblock regions of
 * kho_in_reserve_memory(), which wants twice that free, at most one run
 * per preserved block).
 *
 * Return: 0, or -ENOSPC if the image is refused.
 */
int kho_check_kimage(struct kimage *image)
{
	phys_addr_t room, segs = 0, reader, need, total = kho_scratch_total();
	struct kho_track_stats st;
	unsigned long i;

	if (!image->kho.fdt)
		return 0;
	kho_track_stats(&kho_out.track, &st);
	reader = 2 * (phys_addr_t)st.blocks *
		 (sizeof(struct kho_run) + 2 * sizeof(struct memblock_region));
	need = kho_early_kern + reader;
	/* Every segment of such an image is in the scratch areas */
	for (i = 0; i < image->nr_segments; i++)
		segs += image->segment[i].memsz;
	room = total > segs ? total - segs : 0;
	if (room >= need)
		return 0;
	pr_err("refusing the kexec: its %lu segments (%llu MiB) leave %llu MiB of the scratch areas to the next kernel, which needs about %llu MiB of them early (%llu MiB to read this handover): the first kernel of the chain must boot with a larger kho_scratch=\n",
	       image->nr_segments, segs >> 20, room >> 20, need >> 20,
	       reader >> 20);
	return -ENOSPC;
}

static void __init kho_release_scratch_cma(void)
{
	unsigned int i;

	/*
	 * Scratch memory goes to the page allocator as CMA pageblocks: only
	 * movable allocations, which never need preserving, use it.
	 */
	for (i = 0; i < kho_scratch_cnt; i++) {
		unsigned long pfn = PHYS_PFN(kho_scratch[i].addr);
		unsigned long end = pfn + PHYS_PFN(kho_scratch[i].size);

		for (; pfn < end; pfn += pageblock_nr_pages)
			init_cma_reserved_pageblock(pfn_to_page(pfn));
	}
}

static int __init kho_init(void)
{
	/* Keep the incoming root FDT, for kho_retrieve_subtree(). */
	if (kho_in.fdt_phys && !kho_restore_folio(kho_in.fdt_phys))
		pr_warn("cannot restore the incoming FDT page\n");

	if (kho_enable) {
		kho_out.fdt_page = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!kho_out.fdt_page) {
			pr_err("cannot allocate the handover FDT: disabled\n");
			kho_enable = false;
		}
		/* After a handover, kho_memory_init() released them already. */
		if (!kho_in.scratch_phys)
			kho_release_scratch_cma();
	}
	kho_debugfs_init();
	return 0;
}
subsys_initcall(kho_init);
