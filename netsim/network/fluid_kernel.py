"""The fluid model's compiled core: flow and entry storage with free lists, per-link membership kept
incrementally, and max-min fair rates recomputed on the connected component of what changed.

Storage (all numpy arrays, grown by doubling, slots reused through free lists):

- a *flow* (slot f) is one path-set of one transfer: bytes left `rem[f]` as of time `t[f]`, its
  `rate[f]`, its predicted drain time `finish[f]`, its own rate cap, and its chain of entries;
- an *entry* (slot e) says flow `e_flow[e]` loads link `e_link[e]` with `e_coef[e]` x its rate. Entries
  of one link form a doubly-linked list (`l_head`, `e_lnext`, `e_lprev`), entries of one flow a chain
  (`f_head`, `e_fnext`), so adding or removing a flow touches only its own entries.

A flow's bytes are brought up to date lazily, only when its rate changes (`rem -= rate x (now - t)`),
so an event costs what changed: the flows that started or drained, the links they used (seeds), and
everything connected to those through shared links — the only flows whose max-min rates can move.

Rates come from progressive filling, the same algorithm as `max_min.max_min_rates` (the plain numpy
reference the tests compare against): every unfrozen flow of the component rises together until a link
saturates (residual <= SATURATED x capacity) or a flow reaches its cap; the flows there freeze at that
level. Each round costs the links still loaded, plus the entries of the flows it freezes.

The functions are compiled with numba on first use and cached on disk, so later runs start at once.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from netsim.network.max_min import SATURATED

NONE = -1


# Compiled helpers cost ~11 ns per array argument per call (reference counts), so the hot paths call
# them once per flow or once per event, never once per entry or per link.

@njit(cache=True)
def link_entries(f, links, coefs, lo, hi, entry_free, n_entry_free, e_flow, e_link, e_coef, e_lnext, e_lprev, e_fnext,
                 f_head, l_head):
    """Flow f loads links[lo:hi] with coefs[lo:hi]: one entry each, taken from the free list and put at the
    head of its link's list and of the flow's chain. Returns the entry free count."""
    for k in range(lo, hi):
        n_entry_free -= 1
        e = entry_free[n_entry_free]
        link = links[k]
        e_flow[e] = f
        e_link[e] = link
        e_coef[e] = coefs[k]
        head = l_head[link]
        e_lnext[e] = head
        e_lprev[e] = NONE
        if head != NONE:
            e_lprev[head] = e
        l_head[link] = e
        e_fnext[e] = f_head[f]
        f_head[f] = e
    return n_entry_free


@njit(cache=True)
def account(links, n, new_load, now, load, since, total, peak, bins, runs, width):
    """Links links[:n] carried `load[link]` bytes/s since `since[link]` and carry `new_load[link]` from `now`:
    add the old load to each one's total, peak and time bins (of `width` seconds; the caller has made
    the bins reach `now`), and start its new interval. The partial first and last bins are added to
    `bins`; the whole bins between go to `runs` as a difference pair (see `telemetry.LinkMeter`), so a
    long steady load costs the same as a short one."""
    nbins = bins.shape[0]
    last = min(int(now // width), nbins - 1)  # the bin `now` falls in
    for i in range(n):
        link = links[i]
        t0 = since[link]
        rate = load[link]
        if now > t0 and rate != 0.0:
            total[link] += rate * (now - t0)
            if rate > peak[link]:
                peak[link] = rate
            first = last if t0 >= last * width else int(t0 // width)
            if first == last:
                bins[first, link] += rate * (min(now, (first + 1) * width) - t0)
            else:
                bins[first, link] += rate * ((first + 1) * width - t0)
                if last > first + 1:
                    runs[first + 1, link] += rate
                    runs[last, link] -= rate
                hi = min(now, (last + 1) * width)
                if hi > last * width:
                    bins[last, link] += rate * (hi - last * width)
        since[link] = now
        load[link] = new_load[link]


@njit(cache=True)
def account_all(n_links, now, load, since, total, peak, bins, runs, width):
    """Every link's interval up to `now` (the end of a run); loads stay as they are."""
    account(np.arange(n_links), n_links, load, now, load, since, total, peak, bins, runs, width)


@njit(cache=True)
def insert_flows(now, sizes, caps, batch, index, counts, links, coefs, flow_free, n_flow_free, entry_free,
                 n_entry_free, f_alive, f_rem, f_t, f_rate, f_size, f_cap, f_batch, f_index, f_finish, f_head,
                 e_flow, e_link, e_coef, e_lnext, e_lprev, e_fnext, l_head, seeds, n_seeds, seed_mark, stamp,
                 out_slots):
    """Take slots for new flows and link their entries in; each new flow becomes a seed.
    Returns (flow free count, entry free count, seed count). The caller made room beforehand."""
    k = 0
    for i in range(len(sizes)):
        n_flow_free -= 1
        f = flow_free[n_flow_free]
        out_slots[i] = f
        f_alive[f] = True
        f_rem[f] = sizes[i]
        f_size[f] = sizes[i]
        f_t[f] = now
        f_rate[f] = 0.0
        f_cap[f] = caps[i]
        f_batch[f] = batch[i]
        f_index[f] = index[i]
        f_finish[f] = np.inf
        f_head[f] = NONE
        n_entry_free = link_entries(f, links, coefs, k, k + counts[i], entry_free, n_entry_free, e_flow, e_link, e_coef,
                                    e_lnext, e_lprev, e_fnext, f_head, l_head)
        k += counts[i]
        if seed_mark[f] != stamp:
            seed_mark[f] = stamp
            seeds[n_seeds] = f
            n_seeds += 1
    return n_flow_free, n_entry_free, n_seeds


@njit(cache=True)
def _unlink_entries(f, f_head, e_link, e_lnext, e_lprev, e_fnext, l_head, entry_free, n_entry_free,
                    seed_links, n_seed_links, link_mark, stamp):
    """Remove flow f's entries from their links; their links become seeds."""
    e = f_head[f]
    while e != NONE:
        nxt = e_lnext[e]
        prv = e_lprev[e]
        link = e_link[e]
        if prv != NONE:
            e_lnext[prv] = nxt
        else:
            l_head[link] = nxt
        if nxt != NONE:
            e_lprev[nxt] = prv
        if link_mark[link] != stamp:
            link_mark[link] = stamp
            seed_links[n_seed_links] = link
            n_seed_links += 1
        entry_free[n_entry_free] = e
        n_entry_free += 1
        e = e_fnext[e]
    f_head[f] = NONE
    return n_entry_free, n_seed_links


@njit(cache=True)
def remove_flows(slots, f_alive, f_head, f_finish, e_link, e_lnext, e_lprev, e_fnext, l_head, flow_free,
                 n_flow_free, entry_free, n_entry_free, seed_links, n_seed_links, link_mark, stamp):
    """Free drained flows and their entries; the links they used become seeds."""
    for i in range(len(slots)):
        f = slots[i]
        n_entry_free, n_seed_links = _unlink_entries(f, f_head, e_link, e_lnext, e_lprev, e_fnext, l_head,
                                                     entry_free, n_entry_free, seed_links, n_seed_links,
                                                     link_mark, stamp)
        f_alive[f] = False
        f_finish[f] = np.inf
        flow_free[n_flow_free] = f
        n_flow_free += 1
    return n_flow_free, n_entry_free, n_seed_links


@njit(cache=True)
def drained(now, n_slots, f_alive, f_rem, f_t, f_rate, f_size, f_batch, f_index, finish_rel, finish_clock, out,
            out_batch, out_index):
    """Flows whose bytes are (within tolerance) gone at `now`: their slots, batches and indices within
    the batch are written to `out`, `out_batch`, `out_index`; returns how many."""
    k = 0
    for f in range(n_slots):
        if f_alive[f]:
            left = f_rem[f] - f_rate[f] * (now - f_t[f])
            if left <= max(finish_rel * f_size[f], f_rate[f] * (finish_clock * now)):
                out[k] = f
                out_batch[k] = f_batch[f]
                out_index[k] = f_index[f]
                k += 1
    return k


@njit(cache=True)
def drain(now, n_slots, f_alive, f_rem, f_t, f_rate, f_size, f_batch, f_index, finish_rel, finish_clock, out,
          out_batch, out_index, f_head, f_finish, e_link, e_lnext, e_lprev, e_fnext, l_head, flow_free, n_flow_free,
          entry_free, n_entry_free, seed_links, n_seed_links, seed_link_mark, stamp):
    """`drained`, then `remove_flows` on what drained, in one call (one per event: calls cost microseconds).
    Returns (drained count, flow free count, entry free count, seed link count)."""
    k = drained(now, n_slots, f_alive, f_rem, f_t, f_rate, f_size, f_batch, f_index, finish_rel, finish_clock, out,
                out_batch, out_index)
    if k:
        n_flow_free, n_entry_free, n_seed_links = remove_flows(
            out[:k], f_alive, f_head, f_finish, e_link, e_lnext, e_lprev, e_fnext, l_head, flow_free, n_flow_free,
            entry_free, n_entry_free, seed_links, n_seed_links, seed_link_mark, stamp)
    return k, n_flow_free, n_entry_free, n_seed_links


@njit(cache=True, error_model="numpy")
def recompute(now, seeds, n_seeds, seed_links, n_seed_links, l_head, e_lnext, e_fnext, e_flow, e_link, e_coef,
              f_head, f_alive, f_rem, f_t, f_rate, f_cap, f_finish, capacity, load, flow_mark, link_mark, stamp,
              comp_f, comp_l, demand, count, residual, frozen, changed, metered, since, total, peak, bins, runs, width,
              n_slots):
    """Max-min rates for the component connected to the seed flows and links. Returns its flow count and
    the earliest predicted drain over all `n_slots` flow slots (the next wake-up).

    `flow_mark`/`link_mark` hold `stamp` for what this call visits (the caller bumps the stamp, so
    nothing is cleared). `comp_f`, `comp_l`, `demand`, `count`, `residual`, `frozen` (per flow slot) and
    `changed` (per link) are scratch space. With
    `metered`, a link's old load is added to the meter's arrays (`since`, `total`, `peak`, `bins`/`runs` of
    `width`) just before it changes, so the meter costs what changed too (links with no entries
    beyond the real links, such as endpoint caps, are never metered: `since` covers the real links).
    """
    nf = 0
    nl = 0
    for i in range(n_seeds):
        f = seeds[i]
        if f_alive[f] and flow_mark[f] != stamp:
            flow_mark[f] = stamp
            comp_f[nf] = f
            nf += 1
    for i in range(n_seed_links):
        link = seed_links[i]
        if link_mark[link] != stamp:
            link_mark[link] = stamp
            comp_l[nl] = link
            nl += 1
    i_f = 0
    i_l = 0
    while i_f < nf or i_l < nl:  # closure: a flow pulls in its links, a link pulls in its flows
        while i_f < nf:
            e = f_head[comp_f[i_f]]
            i_f += 1
            while e != NONE:
                link = e_link[e]
                if link_mark[link] != stamp:
                    link_mark[link] = stamp
                    comp_l[nl] = link
                    nl += 1
                e = e_fnext[e]
        while i_l < nl:
            e = l_head[comp_l[i_l]]
            i_l += 1
            while e != NONE:
                f = e_flow[e]
                if flow_mark[f] != stamp:
                    flow_mark[f] = stamp
                    comp_f[nf] = f
                    nf += 1
                e = e_lnext[e]
    capped = False
    for i in range(nf):
        f = comp_f[i]
        f_rem[f] -= f_rate[f] * (now - f_t[f])  # bytes up to now, at the old rate
        f_t[f] = now
        f_rate[f] = -1.0  # unfrozen
        if f_cap[f] < np.inf:
            capped = True
    for i in range(nl):
        link = comp_l[i]
        demand[link] = 0.0
        count[link] = 0
        residual[link] = capacity[link]  # from here on: capacity less what frozen flows take
    n_entries = 0
    for i in range(nf):
        e = f_head[comp_f[i]]
        while e != NONE:
            demand[e_link[e]] += e_coef[e]
            count[e_link[e]] += 1
            n_entries += 1
            e = e_fnext[e]
    # Progressive filling, with the loaded links in a min-heap by the level at which they saturate,
    # residual / demand (sorted to start; a link whose demand changes is pushed again with its new key
    # and its old entry is skipped as stale), and capped flows in order of cap: a round costs the
    # entries of the flows it freezes, not a pass over every link of the component.
    hk = np.empty(nl + n_entries)
    hl = np.empty(nl + n_entries, dtype=np.int64)
    hn = 0
    for i in range(nl):
        link = comp_l[i]
        if count[link] > 0:
            hk[hn] = residual[link] / demand[link]
            hl[hn] = link
            hn += 1
    order = np.argsort(hk[:hn])
    hk[:hn] = hk[:hn][order]
    hl[:hn] = hl[:hn][order]
    cap_order = comp_f[:nf][np.argsort(f_cap[comp_f[:nf]])] if capped else comp_f[:0]
    cp = 0
    affected = np.empty(nl, dtype=np.int64)
    unfrozen = nf
    level = 0.0
    while unfrozen > 0:
        n_frozen = 0  # flows that stop rising at this level: on a saturated link, or at their cap
        found = False  # this round's level is set
        while True:  # pop stale entries; then set the level; then pop the links saturated at it
            link = hl[0] if hn > 0 else -1
            stale = hn > 0 and (count[link] == 0 or hk[0] != residual[link] / demand[link])
            if not stale:
                if not found:
                    nxt = hk[0] if hn > 0 else np.inf
                    while cp < len(cap_order) and f_rate[cap_order[cp]] >= 0.0:
                        cp += 1
                    if cp < len(cap_order) and f_cap[cap_order[cp]] < nxt:
                        nxt = f_cap[cap_order[cp]]
                    if nxt == np.inf:
                        break
                    if nxt > level:
                        level = nxt
                    found = True
                    continue
                if hn == 0 or residual[link] - demand[link] * level > SATURATED * capacity[link]:
                    break
                e = l_head[link]
                while e != NONE:
                    f = e_flow[e]
                    if f_rate[f] < 0.0:
                        f_rate[f] = level
                        frozen[n_frozen] = f
                        n_frozen += 1
                    e = e_lnext[e]
            hn -= 1  # pop (sift down)
            hk[0], hl[0] = hk[hn], hl[hn]
            i = 0
            while True:
                a = 2 * i + 1
                if a >= hn:
                    break
                if a + 1 < hn and hk[a + 1] < hk[a]:
                    a += 1
                if hk[i] <= hk[a]:
                    break
                hk[i], hk[a] = hk[a], hk[i]
                hl[i], hl[a] = hl[a], hl[i]
                i = a
        if not found:
            break
        while cp < len(cap_order) and f_cap[cap_order[cp]] <= level * (1.0 + SATURATED):
            f = cap_order[cp]
            if f_rate[f] < 0.0:
                f_rate[f] = level
                frozen[n_frozen] = f
                n_frozen += 1
            cp += 1
        n_affected = 0
        for i in range(n_frozen):  # their entries leave their links' demand
            e = f_head[frozen[i]]
            while e != NONE:
                link = e_link[e]
                residual[link] -= e_coef[e] * level
                demand[link] -= e_coef[e]
                count[link] -= 1
                if changed[link] != -1:  # `changed` marks this round's links (-1: never a link id; cleared below)
                    changed[link] = -1
                    affected[n_affected] = link
                    n_affected += 1
                e = e_fnext[e]
        for i in range(n_affected):  # their new keys (sift up)
            link = affected[i]
            changed[link] = 0
            if count[link] > 0:
                j = hn
                hk[j] = residual[link] / demand[link]
                hl[j] = link
                hn += 1
                while j > 0:
                    up = (j - 1) // 2
                    if hk[up] <= hk[j]:
                        break
                    hk[up], hk[j] = hk[j], hk[up]
                    hl[up], hl[j] = hl[j], hl[up]
                    j = up
        unfrozen -= n_frozen
    for i in range(nf):
        f = comp_f[i]
        if f_rate[f] < 0.0:
            f_rate[f] = level
        f_finish[f] = now + f_rem[f] / f_rate[f] if f_rate[f] > 0.0 else np.inf
    n_changed = 0  # links whose load changed (a load that did not keeps running: nothing to account)
    for i in range(nl):
        link = comp_l[i]
        carried = 0.0
        e = l_head[link]
        while e != NONE:
            carried += e_coef[e] * f_rate[e_flow[e]]
            e = e_lnext[e]
        if carried != load[link]:
            if metered and link < len(since):
                demand[link] = carried  # scratch from here on: the new load
                changed[n_changed] = link
                n_changed += 1
            else:
                load[link] = carried
    if n_changed:
        account(changed, n_changed, demand, now, load, since, total, peak, bins, runs, width)
    return nf, next_finish(n_slots, f_finish)


@njit(cache=True)
def next_finish(n_slots, f_finish):
    """The earliest predicted drain over every flow slot (inf: none)."""
    best = np.inf
    for f in range(n_slots):
        if f_finish[f] < best:
            best = f_finish[f]
    return best


@njit(cache=True)
def flows_on_links(links, l_head, e_lnext, e_flow, flow_mark, stamp, out):
    """Distinct flows with an entry on any of `links`; returns how many were written to `out`."""
    k = 0
    for i in range(len(links)):
        e = l_head[links[i]]
        while e != NONE:
            f = e_flow[e]
            if flow_mark[f] != stamp:
                flow_mark[f] = stamp
                out[k] = f
                k += 1
            e = e_lnext[e]
    return k


@njit(cache=True)
def drop_entries(f, f_head, e_link, e_lnext, e_lprev, e_fnext, l_head, entry_free, n_entry_free, seed_links,
                 n_seed_links, link_mark, stamp):
    """Unlink flow f's entries (it is about to get new ones: a reroute)."""
    return _unlink_entries(f, f_head, e_link, e_lnext, e_lprev, e_fnext, l_head, entry_free, n_entry_free,
                           seed_links, n_seed_links, link_mark, stamp)


@njit(cache=True)
def add_entries(f, links, coefs, entry_free, n_entry_free, e_flow, e_link, e_coef, e_lnext, e_lprev, e_fnext,
                f_head, l_head):
    """Give flow f the entries (links, coefs)."""
    return link_entries(f, links, coefs, 0, len(links), entry_free, n_entry_free, e_flow, e_link, e_coef, e_lnext,
                        e_lprev, e_fnext, f_head, l_head)


@njit(cache=True)
def collect_entries(slots, f_head, e_fnext, e_link, e_coef):
    """Every entry of the flows `slots` as (owner position in `slots`, link, coef) arrays."""
    total = 0
    for i in range(len(slots)):
        e = f_head[slots[i]]
        while e != NONE:
            total += 1
            e = e_fnext[e]
    owner = np.empty(total, dtype=np.int64)
    link = np.empty(total, dtype=np.int64)
    coef = np.empty(total, dtype=np.float64)
    k = 0
    for i in range(len(slots)):
        e = f_head[slots[i]]
        while e != NONE:
            owner[k] = i
            link[k] = e_link[e]
            coef[k] = e_coef[e]
            k += 1
            e = e_fnext[e]
    return owner, link, coef
