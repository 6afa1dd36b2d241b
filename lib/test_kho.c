// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_kho.c - test kexec handover end to end
 *
 * At every boot with kho=on this preserves folios of random orders filled
 * with random data, and a range of pages with kho_preserve_phys(), and at
 * KHO finalization publishes a "kho-test" subtree listing them with their
 * checksums. After the kexec, it restores every one, checks its order,
 * reference count and every byte, and carries half of the folios over to
 * the next kexec along with new ones, so a chain of kexecs tests memory
 * preserved across several of them.
 *
 * Results are in /sys/kernel/debug/kho_test/report, as KTAP:
 *	generation	this boot's generation (the previous one plus one)
 *	report		what was verified at boot
 *	corrupt		write a kind of damage to do to the finalized
 *			handover, to test the next kernel's checks
 *	bench		write "ORDER MIB" to preserve that much memory in
 *			blocks of that order, for measurements; read what
 *			was preserved and how long it took
 */

#define pr_fmt(fmt) "kho_test: " fmt

#include <linux/crc32.h>
#include <linux/debugfs.h>
#include <linux/io.h>
#include <linux/kexec_handover.h>
#include <linux/libfdt.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/prandom.h>
#include <linux/random.h>
#include <linux/sched/clock.h>
#include <linux/seq_buf.h>
#include <linux/slab.h>

#define KHO_TEST_NAME		"kho-test"
#define KHO_TEST_COMPATIBLE	"kho-test-v1"
#define KHO_TEST_NEW_FOLIOS	8
#define KHO_TEST_MAX_FOLIOS	64
#define KHO_TEST_RANGE_PAGES	12
#define KHO_TEST_REPORT_SIZE	(16 * 1024)

/* As found in the subtree, in host byte order. */
struct kho_test_item {
	__u64 phys;
	__u64 size;
	__u32 crc;
	__u32 order;
	__u32 generation;	/* boot that first preserved it */
	__u32 reserved;
};

struct kho_test_folio {
	struct list_head list;
	struct folio *folio;
	u32 crc;
	u32 generation;
};

/*
 * The bench: many blocks of one order, their addresses in lists that are
 * themselves preserved, so the next kernel can restore every block and
 * time it. Orders above the page allocator's come from
 * alloc_contig_pages() and are preserved as ranges.
 */
#define KHO_BENCH_LIST_ORDER	MAX_PAGE_ORDER
#define KHO_BENCH_PER_LIST	((PAGE_SIZE << KHO_BENCH_LIST_ORDER) / sizeof(u64))
#define KHO_BENCH_MAX_LISTS	64

struct kho_test_bench_hdr {
	__u32 order;
	__u32 nr_lists;
	__u64 nr;
};

static struct {
	unsigned int order;
	unsigned long nr;
	struct folio *lists[KHO_BENCH_MAX_LISTS];
	unsigned int nr_lists;
	u64 alloc_ns, preserve_ns;
} bench;

static struct {
	struct list_head folios;	/* preserved for the next kernel */
	struct page *range;		/* first page of the phys range */
	u32 range_crc;
	u32 generation;
	struct folio *fdt;		/* the subtree, while finalized */
	struct seq_buf report;
	char *report_buf;
	unsigned int tests;
} kt = {
	.folios = LIST_HEAD_INIT(kt.folios),
};

static u32 kho_test_crc(const void *p, size_t size)
{
	return crc32_le(~0, p, size);
}

/* Random bytes fast enough to fill megabytes under emulation. */
static void kho_test_fill(void *p, size_t size)
{
	struct rnd_state rnd;
	u32 *w = p;
	size_t i;

	prandom_seed_state(&rnd, get_random_u64());
	for (i = 0; i < size / sizeof(*w); i++)
		w[i] = prandom_u32_state(&rnd);
}

static void __printf(2, 3) kho_test_result(bool ok, const char *fmt, ...)
{
	va_list args;

	seq_buf_printf(&kt.report, "%s %u ", ok ? "ok" : "not ok", ++kt.tests);
	va_start(args, fmt);
	seq_buf_vprintf(&kt.report, fmt, args);
	va_end(args);
	seq_buf_putc(&kt.report, '\n');
	if (!ok)
		pr_err("restore check failed\n");
}

static const struct kho_test_item *kho_test_items(const void *fdt,
						  const char *name, int *nr)
{
	const struct kho_test_item *items;
	int len;

	items = fdt_getprop(fdt, 0, name, &len);
	if (!items || len < 0 || len % sizeof(*items) ||
	    len / sizeof(*items) > KHO_TEST_MAX_FOLIOS) {
		*nr = 0;
		return NULL;
	}
	*nr = len / sizeof(*items);
	return items;
}

static void kho_test_restore_folios(const struct kho_test_item *items, int nr)
{
	int i;

	for (i = 0; i < nr; i++) {
		const struct kho_test_item *it = &items[i];
		struct kho_test_folio *kf;
		struct folio *folio;
		u32 crc;

		folio = kho_restore_folio(it->phys);
		if (!folio) {
			kho_test_result(false, "folio %d: order %u at %#llx restored",
					i, it->order, it->phys);
			continue;
		}
		crc = kho_test_crc(folio_address(folio), folio_size(folio));
		kho_test_result(folio_order(folio) == it->order &&
				folio_ref_count(folio) == 1 && crc == it->crc,
				"folio %d: order %u (want %u), refcount %d, %zu KiB at %#llx, crc %#x (want %#x), from generation %u",
				i, folio_order(folio), it->order,
				folio_ref_count(folio), folio_size(folio) >> 10,
				it->phys, crc, it->crc, it->generation);

		/* Carry every other folio to the next kernel, free the rest. */
		kf = kzalloc(sizeof(*kf), GFP_KERNEL);
		if (i % 2 || !kf || crc != it->crc) {
			kfree(kf);
			folio_put(folio);
			continue;
		}
		kf->folio = folio;
		kf->crc = crc;
		kf->generation = it->generation;
		list_add_tail(&kf->list, &kt.folios);
	}

	/* The same folio cannot be restored twice. */
	if (nr)
		kho_test_result(!kho_restore_folio(items[0].phys),
				"a restored folio cannot be restored again");
}

static void kho_test_restore_range(const struct kho_test_item *it)
{
	unsigned long i, nr = it->size >> PAGE_SHIFT;
	int err;
	u32 crc;

	/*
	 * Not the way it was preserved (pages 1..10 of the 1..12 preserved
	 * as blocks of 1, 2, 8 and 1 pages; or one page too many): refused,
	 * and nothing is taken.
	 */
	err = kho_restore_phys(it->phys, it->size - 2 * PAGE_SIZE);
	kho_test_result(err == -ENOENT,
			"restoring part of the range is refused: %d", err);
	err = kho_restore_phys(it->phys, it->size + PAGE_SIZE);
	kho_test_result(err == -ENOENT,
			"restoring more than the range is refused: %d", err);
	err = kho_restore_phys(it->phys, it->size);
	if (err) {
		kho_test_result(false, "range of %lu pages at %#llx restored: %d",
				nr, it->phys, err);
		return;
	}
	crc = kho_test_crc(phys_to_virt(it->phys), it->size);
	kho_test_result(crc == it->crc,
			"range of %lu pages at %#llx: crc %#x (want %#x)",
			nr, it->phys, crc, it->crc);
	/* Restored pages are ordinary pages: they can be freed. */
	for (i = 0; i < nr; i++)
		__free_page(pfn_to_page(PHYS_PFN(it->phys) + i));
	err = kho_restore_phys(it->phys, it->size);
	kho_test_result(err == -ENOENT,
			"a restored range cannot be restored again: %d", err);
}

/* Where the address of bench block @i is kept in @lists. */
static u64 *kho_test_bench_slot(struct folio **lists, unsigned long i)
{
	return (u64 *)folio_address(lists[i / KHO_BENCH_PER_LIST]) +
	       i % KHO_BENCH_PER_LIST;
}

static void kho_test_restore_bench(const void *fdt)
{
	const struct kho_test_bench_hdr *hdr;
	unsigned long i, restored = 0, nr;
	struct folio *lists[KHO_BENCH_MAX_LISTS];
	const u64 *list_phys;
	unsigned int order;
	int len, lens, l;
	u64 t0, ns;

	hdr = fdt_getprop(fdt, 0, "bench", &len);
	list_phys = fdt_getprop(fdt, 0, "bench-lists", &lens);
	if (!hdr)
		return;
	/* Orders as bench_write() accepts them, so shifts stay in range. */
	if (len != sizeof(*hdr) || !list_phys || hdr->nr_lists > KHO_BENCH_MAX_LISTS ||
	    lens != hdr->nr_lists * sizeof(u64) || hdr->order > PUD_ORDER ||
	    hdr->nr > (u64)hdr->nr_lists * KHO_BENCH_PER_LIST) {
		kho_test_result(false, "bench state is valid");
		return;
	}
	order = hdr->order;
	nr = hdr->nr;
	for (l = 0; l < hdr->nr_lists; l++) {
		lists[l] = kho_restore_folio(list_phys[l]);
		if (!lists[l] || folio_order(lists[l]) != KHO_BENCH_LIST_ORDER) {
			kho_test_result(false, "bench list %d restored", l);
			if (lists[l])
				folio_put(lists[l]);
			while (l--)
				folio_put(lists[l]);
			return;
		}
	}

	/*
	 * Keep the addresses of the blocks restored at the front of the
	 * lists: those, and only those, are ours to give back.
	 */
	t0 = local_clock();
	for (i = 0; i < nr; i++) {
		u64 phys = *kho_test_bench_slot(lists, i);
		bool ok;

		if (order <= MAX_PAGE_ORDER)
			ok = kho_restore_folio(phys);
		else
			ok = !kho_restore_phys(phys, PAGE_SIZE << order);
		if (ok)
			*kho_test_bench_slot(lists, restored++) = phys;
		cond_resched();
	}
	ns = local_clock() - t0;
	seq_buf_printf(&kt.report,
		       "# bench: restored %lu of %lu blocks of order %u (%llu MiB) in %llu us\n",
		       restored, nr, order,
		       ((u64)nr << (order + PAGE_SHIFT)) >> 20,
		       div_u64(ns, NSEC_PER_USEC));
	kho_test_result(restored == nr, "bench: every block restored");

	/* Give it all back. */
	for (i = 0; i < restored; i++) {
		u64 phys = *kho_test_bench_slot(lists, i);
		unsigned long p;

		cond_resched();
		if (order <= MAX_PAGE_ORDER) {
			folio_put(pfn_folio(PHYS_PFN(phys)));
			continue;
		}
		for (p = 0; p < (1UL << order); p++)
			__free_page(pfn_to_page(PHYS_PFN(phys) + p));
		cond_resched();
	}
	for (l = 0; l < hdr->nr_lists; l++)
		folio_put(lists[l]);
}

static void kho_test_restore(void)
{
	const struct kho_test_item *items;
	struct folio *fdt_folio;
	const void *fdt;
	phys_addr_t phys;
	const u32 *gen;
	int err, nr, len = 0;

	err = kho_retrieve_subtree(KHO_TEST_NAME, &phys);
	if (err) {
		seq_buf_printf(&kt.report, "1..0 # SKIP no incoming %s state (%d)\n",
			       KHO_TEST_NAME, err);
		return;
	}
	fdt_folio = kho_restore_folio(phys);
	if (!fdt_folio) {
		kho_test_result(false, "subtree at %pa restored", &phys);
		return;
	}
	fdt = folio_address(fdt_folio);
	/* The header first: nothing else of the blob is known to be inside */
	if (fdt_check_header(fdt) || fdt_totalsize(fdt) > folio_size(fdt_folio))
		gen = NULL;
	else
		gen = fdt_getprop(fdt, 0, "generation", &len);
	if (!gen || len != sizeof(*gen) ||
	    fdt_node_check_compatible(fdt, 0, KHO_TEST_COMPATIBLE)) {
		kho_test_result(false, "subtree at %pa is a valid %s",
				&phys, KHO_TEST_COMPATIBLE);
		folio_put(fdt_folio);
		return;
	}
	kt.generation = *gen + 1;
	seq_buf_printf(&kt.report, "# incoming state of generation %u\n", *gen);

	items = kho_test_items(fdt, "folios", &nr);
	kho_test_result(nr > 0, "subtree lists %d folios", nr);
	kho_test_restore_folios(items, nr);

	items = kho_test_items(fdt, "range", &nr);
	if (nr == 1)
		kho_test_restore_range(items);
	else
		kho_test_result(false, "subtree lists the range");

	kho_test_restore_bench(fdt);

	/* Something that was not preserved cannot be restored. */
	kho_test_result(!kho_restore_folio(phys),
			"the subtree folio cannot be restored again");
	folio_put(fdt_folio);
	seq_buf_printf(&kt.report, "1..%u\n", kt.tests);
}

static int kho_test_add_folio(struct folio *folio, u32 crc, u32 generation)
{
	struct kho_test_folio *kf = kzalloc(sizeof(*kf), GFP_KERNEL);

	if (!kf)
		return -ENOMEM;
	kf->folio = folio;
	kf->crc = crc;
	kf->generation = generation;
	list_add_tail(&kf->list, &kt.folios);
	return 0;
}

static int kho_test_preserve(void)
{
	static const unsigned int orders[] = { 0, 1, 2, 3, 5, 9, 10 };
	struct kho_test_folio *kf;
	struct page *range;
	int i, err;

	for (i = 0; i < KHO_TEST_NEW_FOLIOS; i++) {
		unsigned int order = orders[get_random_u32_below(ARRAY_SIZE(orders))];
		struct folio *folio;

		folio = folio_alloc(GFP_KERNEL | __GFP_NOWARN, order);
		if (!folio)
			folio = folio_alloc(GFP_KERNEL, 0);
		if (!folio)
			return -ENOMEM;
		kho_test_fill(folio_address(folio), folio_size(folio));
		err = kho_test_add_folio(folio, kho_test_crc(folio_address(folio),
							     folio_size(folio)),
					 kt.generation);
		if (err) {
			folio_put(folio);
			return err;
		}
	}
	list_for_each_entry(kf, &kt.folios, list) {
		err = kho_preserve_folio(kf->folio);
		if (err)
			return err;
	}

	/* Pages 1..12 of 16: a range that is not a naturally aligned block. */
	range = alloc_pages(GFP_KERNEL, 4);
	if (!range)
		return -ENOMEM;
	split_page(range, 4);
	kt.range = range + 1;
	kho_test_fill(page_address(kt.range), KHO_TEST_RANGE_PAGES * PAGE_SIZE);
	kt.range_crc = kho_test_crc(page_address(kt.range),
				    KHO_TEST_RANGE_PAGES * PAGE_SIZE);
	return kho_preserve_phys(page_to_phys(kt.range),
				 KHO_TEST_RANGE_PAGES * PAGE_SIZE);
}

static int kho_test_build_fdt(void *fdt, size_t size)
{
	struct kho_test_item *items, *it;
	struct kho_test_folio *kf;
	int n = 0, err;

	items = kcalloc(KHO_TEST_MAX_FOLIOS, sizeof(*items), GFP_KERNEL);
	if (!items)
		return -ENOMEM;
	list_for_each_entry(kf, &kt.folios, list) {
		if (n == KHO_TEST_MAX_FOLIOS)
			break;
		it = &items[n++];
		it->phys = PFN_PHYS(folio_pfn(kf->folio));
		it->size = folio_size(kf->folio);
		it->order = folio_order(kf->folio);
		it->crc = kf->crc;
		it->generation = kf->generation;
	}
	err = fdt_create(fdt, size) ?:
	      fdt_finish_reservemap(fdt) ?:
	      fdt_begin_node(fdt, "") ?:
	      fdt_property_string(fdt, "compatible", KHO_TEST_COMPATIBLE) ?:
	      fdt_property(fdt, "generation", &kt.generation,
			   sizeof(kt.generation)) ?:
	      fdt_property(fdt, "folios", items, n * sizeof(*items));
	if (!err && bench.nr) {
		struct kho_test_bench_hdr hdr = {
			.order = bench.order,
			.nr_lists = bench.nr_lists,
			.nr = bench.nr,
		};
		u64 lists[KHO_BENCH_MAX_LISTS];
		unsigned int l;

		for (l = 0; l < bench.nr_lists; l++)
			lists[l] = PFN_PHYS(folio_pfn(bench.lists[l]));
		err = fdt_property(fdt, "bench", &hdr, sizeof(hdr)) ?:
		      fdt_property(fdt, "bench-lists", lists,
				   bench.nr_lists * sizeof(u64));
	}
	if (!err) {
		it = &items[0];
		memset(it, 0, sizeof(*it));
		it->phys = page_to_phys(kt.range);
		it->size = KHO_TEST_RANGE_PAGES * PAGE_SIZE;
		it->crc = kt.range_crc;
		it->generation = kt.generation;
		err = fdt_property(fdt, "range", it, sizeof(*it)) ?:
		      fdt_end_node(fdt) ?:
		      fdt_finish(fdt);
	}
	kfree(items);
	return err ? -ENOSPC : 0;
}

static int kho_test_notifier(struct notifier_block *nb, unsigned long cmd,
			     void *data)
{
	struct kho_serialization *ser = data;
	struct folio *fdt;
	int err;

	switch (cmd) {
	case KEXEC_KHO_FINALIZE:
		fdt = folio_alloc(GFP_KERNEL, 0);
		if (!fdt)
			return notifier_from_errno(-ENOMEM);
		err = kho_test_build_fdt(folio_address(fdt), folio_size(fdt)) ?:
		      kho_preserve_folio(fdt) ?:
		      kho_add_subtree(ser, KHO_TEST_NAME, folio_address(fdt));
		if (err) {
			kho_unpreserve_folio(fdt);
			folio_put(fdt);
			return notifier_from_errno(err);
		}
		kt.fdt = fdt;
		return NOTIFY_OK;
	case KEXEC_KHO_ABORT:
		if (kt.fdt) {
			WARN_ON_ONCE(kho_unpreserve_folio(kt.fdt));
			folio_put(kt.fdt);
			kt.fdt = NULL;
		}
		return NOTIFY_OK;
	}
	return NOTIFY_DONE;
}

static struct notifier_block kho_test_nb = {
	.notifier_call = kho_test_notifier,
};

static int report_show(struct seq_file *m, void *v)
{
	seq_printf(m, "KTAP version 1\n# generation %u\n%s", kt.generation,
		   kt.report_buf);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(report);

static ssize_t corrupt_write(struct file *file, const char __user *ubuf,
			     size_t count, loff_t *ppos)
{
	char how[32];
	int err;

	if (count >= sizeof(how))
		return -EINVAL;
	if (copy_from_user(how, ubuf, count))
		return -EFAULT;
	how[count] = '\0';
	err = kho_test_corrupt(strim(how));
	return err ?: count;
}

static const struct file_operations corrupt_fops = {
	.owner = THIS_MODULE,
	.write = corrupt_write,
};

static phys_addr_t kho_bench_alloc(unsigned int order)
{
	struct folio *folio;
	struct page *page;

	if (order <= MAX_PAGE_ORDER) {
		folio = folio_alloc(GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, order);
		return folio ? PFN_PHYS(folio_pfn(folio)) : 0;
	}
	page = alloc_contig_pages(1UL << order, GFP_KERNEL | __GFP_NOWARN,
				  numa_node_id(), NULL);
	return page ? page_to_phys(page) : 0;
}

static int kho_bench_preserve(phys_addr_t phys, unsigned int order)
{
	if (order <= MAX_PAGE_ORDER)
		return kho_preserve_folio(pfn_folio(PHYS_PFN(phys)));
	return kho_preserve_phys(phys, PAGE_SIZE << order);
}

/*
 * Allocates @mib MiB in blocks of @order, or as much as can be had, and
 * preserves it; the memory is never freed in this kernel. A block that
 * lands in scratch memory (possible for alloc_contig_pages()) cannot be
 * preserved and is left out.
 */
static int kho_bench_run(unsigned int order, unsigned long mib)
{
	unsigned long want = (mib << 20) >> (PAGE_SHIFT + order), i, n = 0;
	u64 t0;
	int err = 0;

	bench.nr_lists = min_t(unsigned long, DIV_ROUND_UP(want, KHO_BENCH_PER_LIST),
			       KHO_BENCH_MAX_LISTS);
	for (i = 0; i < bench.nr_lists; i++) {
		bench.lists[i] = folio_alloc(GFP_KERNEL, KHO_BENCH_LIST_ORDER);
		if (!bench.lists[i])
			return -ENOMEM;
		err = kho_preserve_folio(bench.lists[i]);
		if (err)
			return err;
	}
	want = min(want, bench.nr_lists * KHO_BENCH_PER_LIST);

	t0 = local_clock();
	for (i = 0; i < want; i++) {
		phys_addr_t phys = kho_bench_alloc(order);

		if (!phys)
			break;
		*kho_test_bench_slot(bench.lists, i) = phys;
		cond_resched();
	}
	bench.alloc_ns = local_clock() - t0;
	want = i;

	t0 = local_clock();
	for (i = 0; i < want; i++) {
		u64 phys = *kho_test_bench_slot(bench.lists, i);

		err = kho_bench_preserve(phys, order);
		cond_resched();
		if (err == -EINVAL)
			continue;
		if (err)
			break;
		*kho_test_bench_slot(bench.lists, n++) = phys;
	}
	bench.preserve_ns = local_clock() - t0;
	bench.order = order;
	bench.nr = n;
	pr_info("bench: preserved %lu blocks of order %u (%llu MiB) in %llu us\n",
		n, order, ((u64)n << (order + PAGE_SHIFT)) >> 20,
		div_u64(bench.preserve_ns, NSEC_PER_USEC));
	return err == -EINVAL ? 0 : err;
}

static ssize_t bench_write(struct file *file, const char __user *ubuf,
			   size_t count, loff_t *ppos)
{
	unsigned int order;
	unsigned long mib;
	char buf[32];
	int err;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	if (sscanf(buf, "%u %lu", &order, &mib) != 2 || !mib ||
	    order > PUD_ORDER || (mib << 20) < (PAGE_SIZE << order))
		return -EINVAL;
	if (bench.nr_lists)
		return -EBUSY;
	err = kho_bench_run(order, mib);
	return err ?: count;
}

static int bench_show(struct seq_file *m, void *v)
{
	seq_printf(m, "order=%u blocks=%lu mib=%llu alloc_us=%llu preserve_us=%llu\n",
		   bench.order, bench.nr,
		   ((u64)bench.nr << (bench.order + PAGE_SHIFT)) >> 20,
		   div_u64(bench.alloc_ns, NSEC_PER_USEC),
		   div_u64(bench.preserve_ns, NSEC_PER_USEC));
	return 0;
}

static int bench_open(struct inode *inode, struct file *file)
{
	return single_open(file, bench_show, NULL);
}

static const struct file_operations bench_fops = {
	.owner = THIS_MODULE,
	.open = bench_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
	.write = bench_write,
};

static struct dentry *kho_test_dir;

static int __init kho_test_init(void)
{
	int err;

	kt.report_buf = kzalloc(KHO_TEST_REPORT_SIZE, GFP_KERNEL);
	if (!kt.report_buf)
		return -ENOMEM;
	seq_buf_init(&kt.report, kt.report_buf, KHO_TEST_REPORT_SIZE - 1);

	kho_test_restore();

	kho_test_dir = debugfs_create_dir("kho_test", NULL);
	debugfs_create_file("report", 0400, kho_test_dir, NULL, &report_fops);
	debugfs_create_u32("generation", 0400, kho_test_dir, &kt.generation);
	if (!kho_is_enabled())
		return 0;
	debugfs_create_file("corrupt", 0200, kho_test_dir, NULL, &corrupt_fops);
	debugfs_create_file("bench", 0600, kho_test_dir, NULL, &bench_fops);

	err = kho_test_preserve() ?: register_kho_notifier(&kho_test_nb);
	if (err)
		pr_err("cannot prepare the state for the next kernel: %d\n", err);
	else
		pr_info("generation %u: preserved %zu folios and %d pages\n",
			kt.generation, list_count_nodes(&kt.folios),
			KHO_TEST_RANGE_PAGES);
	return 0;
}
late_initcall(kho_test_init);

MODULE_DESCRIPTION("Test of kexec handover across kexec");
MODULE_LICENSE("GPL");
