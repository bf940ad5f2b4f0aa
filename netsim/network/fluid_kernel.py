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
what is connected to those through shared links — followed only through flows whose rate is at or above
a floor below which no rate can move (`change_floor`: the least rate that drained, and a lower bound on
what a new flow gets), since progressive filling freezes everything below it exactly as before. Drains
and the next wake-up read two lazy queues (binary heaps; SimGrid keeps its actions' finish dates the same
way): one by predicted drain time, one by the first instant the drain test passes; a flow whose rate
changes gets a new version in both, and older entries are dropped when they come up. So an instant costs
the flows that drain at it, not a scan of every live flow; the queues are kept only while that is the
cheaper (many live flows, few rates changed per instant: Q_PER_RATED). The flow free list is a permutation
of the slots, free ones first, live ones after (`f_pos` its inverse).

A link's list is kept in order: the seeds of the next recomputation first (new flows go in at the head,
with rate 0), then every other flow by falling rate (each recomputation re-sorts the lists of the links it
touched, in one pass when, as usual, they still are). Per link the kernel also keeps the sums of coef x
rate and of coef over its list (`l_stat`). So following the component through a link walks only its head
— the seeds and the flows at or above the floor — and stops at the first flow below it; what the rest
take of the link is the sum less what was walked. A link a flow left, whose head is below the floor, is
not visited at all (its load drops by what left). This is why an all-to-all whose flows drain one rate
level after another costs per drain the drained flows' entries, not every entry of the links they used.

Where the component is still large — symmetric traffic whose flows share one rate, so the floor cuts
nothing, as a pipelined tree on an oversubscribed fabric, where ~120 flows are connected at every event and
~7% of them move — a recomputation first settles from what changed (`_local`): the new flows' rates are
filled in with every other flow held at its rate, and only flows that turn out to lack a bottleneck are
taken in, until none does. Max-min rates are unique and a vector is max-min exactly when every flow is at
its cap or has a bottleneck, so this finds what filling the component would, at the cost of the flows that
move (tried for components of more than LOCAL_AFTER flows; it gives up, and the component is filled, when
what moves is large).

What was chosen, and why: SimGrid's LMM solver (selective update) re-solves the whole set of constraints
connected to a modified one, which for ECMP traffic is the whole fabric at every flow end; the floor and
the ordered lists cut that to the flows whose rates can move, and the local settling to the flows whose
rates do move, exactly (every partial result is checked against the numpy reference in tests).
Parsimon's decomposition into independent per-link simulations is faster still at scale but approximate
(it convolves per-link delays), so it is not used here.

Flow classes: transfers of the compiled loop that carry the same bytes at the same cap over the same links
with the same coefficients, sent at one instant (a chunked all-gather's chunks, NCCL's channels between two
GPUs), are one flow whose coefficients are the sum of theirs (`_same_flow`, `_join`): max-min gives each
member the class's rate, each link carries their sum, and the class drains when each member would, so the
result is that of one flow per transfer, at the cost of one. Only flows sent at the same instant join,
before any rate is computed, so a class never has to track members whose bytes differ; a failed link splits
the classes it carries (each member rerouted on its own: route keys may part them). Classes of flows that
are images of each other under the fabric's symmetry (a ring step's flows all cross different links) are
not formed: under ECMP each flow hashes its own way, so such flows are not equal in general.

Rates come from progressive filling, the same algorithm as `max_min.max_min_rates` (the plain numpy
reference the tests compare against): every unfrozen flow of the component rises together until a link
saturates (residual <= SATURATED x capacity) or a flow reaches its cap; the flows there freeze at that
level. Each round costs the links still loaded, plus the entries of the flows it freezes.

The functions are compiled with numba on first use and cached on disk, so later runs start at once. Those
the loop calls are compiled without numba's reference counting (`_nrt=False`): they allocate nothing (scratch
comes from the store: `w_key`, `w_idx`; `_arrivals` sorts in place) and every array they touch belongs to
the caller for the whole call, so counting references at each call's entry and exit (two atomic operations
per array argument, and `recompute` takes ~50) bought nothing: without it the loop runs 23-27% faster. A
function allocating with NRT off fails to compile, so this cannot go wrong silently; the few called only from
Python that allocate keep it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from netsim.network.base import ARRIVAL_TOLERANCE
from netsim.network.max_min import SATURATED

NONE = -1

# rows of the per-link sums `l_stat` the kernel keeps beside the entry lists: the rate the link's flows put
# on it (sum of coef x rate) and the sum of their coefficients; and two rows of scratch for `_local`: what
# the flows it took in put on the link at their old rates, and the top rate of the others
L_SUM, L_COEF, L_MOVE, L_TOP, L_ROWS = range(5)
FLOOR_MARGIN = 1e-9  # how far below the bound `change_floor` finds it reports it
FINISH_REL = 1e-12  # a flow with less than this fraction of its bytes left is done
FINISH_CLOCK = 1e-13  # ... or with less than this fraction of the clock left to run
LOCAL_TOL = 1e-11  # `_local`: how close to full a bottleneck, and to its top rate a flow, must be
LOCAL_FLOWS = 32  # ... the most flows it takes in, and the most fillings it makes, before it gives up
LOCAL_ROUNDS = 8
LOCAL_AFTER = 32  # by default, components of more flows than this are first settled by `_local`
DRAIN_MARGIN = 1e-9  # drain-queue entries this close (relative to the clock) past now are checked exactly
# the two lazy queues of live flows (rows of `q_key`, `q_id`): by predicted drain time, and by the first
# instant the drain test (FINISH_REL, FINISH_CLOCK) passes. `q_n` holds their lengths, whether they are
# kept (Q_ON), the live flows from which they may be kept and below which they stop (Q_FROM, Q_UNTIL), and
# what keeping them costs against scanning: an instant's scan costs its live flows, the queues cost each
# flow whose rate changes about Q_PER_RATED flows scanned (two heap entries in, two stale ones out later);
# the rates changed over the last Q_WINDOW instants (Q_RATE; Q_RATED, Q_TICKS count the current window)
# say which costs less, with a factor of 2 between starting and stopping. Measured (1,024 GPUs): the
# halving-doubling and the pipelined tree, ~500-1,100 live flows and 5-17 rates changed per instant, ran
# their loops 10-20% faster with the queues; NCCL's ring on 256 GPUs, ~500 live and 140 changed, 25% slower
Q_FINISH, Q_DRAIN, Q_ON, Q_FROM, Q_UNTIL, Q_PER_RATED, Q_RATE, Q_RATED, Q_TICKS = range(9)
Q_WINDOW = 32
Q_STALE = 2  # a queue holding more than this x the live flows' entries is rebuilt (see `schedule`)


# A call of a compiled helper passes dozens of arrays (it cost ~11 ns more per array argument while the
# loop's functions kept reference counts), so the hot paths call helpers once per flow or once per event,
# never once per entry or per link.

@njit(cache=True, error_model="numpy", inline="always")
def new_flow(f, now, size, cap, batch, index, f_alive, f_rem, f_t, f_rate, f_size, f_cap, f_batch, f_index, f_finish,
             f_due, f_head, seeds, n_seeds, seed_mark, stamp):
    """Slot f holds a new flow of `size` bytes from `now` (rate 0 until rates are computed), capped at `cap`,
    flow `index` of `batch`, with no entries yet; it becomes a seed of the next recomputation. Returns the
    seed count."""
    f_alive[f] = True
    f_rem[f] = size
    f_size[f] = size
    f_t[f] = now
    f_rate[f] = 0.0
    f_cap[f] = cap
    f_batch[f] = batch
    f_index[f] = index
    f_finish[f] = np.inf
    f_due[f] = -np.inf  # (checked at every instant until its rate is computed)
    f_head[f] = NONE
    if seed_mark[f] != stamp:
        seed_mark[f] = stamp
        seeds[n_seeds] = f
        n_seeds += 1
    return n_seeds


@njit(cache=True, error_model="numpy", inline="always")
def link_entries(f, links, coefs, lo, hi, entry_free, n_entry_free, e_flow, e_link, e_coef, e_lnext, e_lprev, e_fnext,
                 f_head, l_head, l_stat):
    """Flow f loads links[lo:hi] with coefs[lo:hi]: one entry each, taken from the free list and put at the
    head of its link's list and of the flow's chain. Returns the entry free count. f is a seed of the next
    recomputation with rate 0 (see `recompute` on the order of a link's list)."""
    for k in range(lo, hi):
        n_entry_free -= 1
        e = entry_free[n_entry_free]
        link = links[k]
        l_stat[L_COEF, link] += coefs[k]
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


@njit(cache=True, error_model="numpy", _nrt=False)
def account(links, n, new_load, now, load, since, total, peak, log_f, log_link, log_n):
    """Links links[:n] carried `load[link]` bytes/s since `since[link]` and carry `new_load[link]` from `now`:
    add the old load to each one's total and peak, log the interval for the meter's time bins (`log_link`,
    and `log_f` rows t0, t1, rate; `log_n[0]` entries so far: `telemetry.LinkMeter` bins them in one pass
    when the log fills or a timeline asks, so the bins cost nothing while the run goes and never need
    coarsening mid-run), and start its new interval. The caller leaves room for `n` more entries."""
    for i in range(n):
        link = links[i]
        t0 = since[link]
        rate = load[link]
        if now > t0 and rate != 0.0:
            total[link] += rate * (now - t0)
            if rate > peak[link]:
                peak[link] = rate
            k = log_n[0]
            log_link[k] = link
            log_f[0, k] = t0
            log_f[1, k] = now
            log_f[2, k] = rate
            log_n[0] = k + 1
        since[link] = now
        load[link] = new_load[link]


@njit(cache=True, error_model="numpy")
def account_all(n_links, now, load, since, total, peak, log_f, log_link, log_n):
    """`account` for every metered link (the meter brought up to `now`)."""
    account(np.arange(n_links), n_links, load, now, load, since, total, peak, log_f, log_link, log_n)


@njit(cache=True, error_model="numpy")
def insert_flows(now, sizes, caps, batch, index, counts, links, coefs, flow_free, n_flow_free, entry_free,
                 n_entry_free, f_alive, f_rem, f_t, f_rate, f_size, f_cap, f_batch, f_index, f_finish, f_head,
                 e_flow, e_link, e_coef, e_lnext, e_lprev, e_fnext, l_head, seeds, n_seeds, seed_mark, stamp,
                 out_slots, l_stat, f_due):
    """Take slots for new flows and link their entries in; each new flow becomes a seed.
    Returns (flow free count, entry free count, seed count). The caller made room beforehand."""
    k = 0
    for i in range(len(sizes)):
        n_flow_free -= 1
        f = flow_free[n_flow_free]
        out_slots[i] = f
        n_seeds = new_flow(f, now, sizes[i], caps[i], batch[i], index[i], f_alive, f_rem, f_t, f_rate, f_size, f_cap,
                           f_batch, f_index, f_finish, f_due, f_head, seeds, n_seeds, seed_mark, stamp)
        n_entry_free = link_entries(f, links, coefs, k, k + counts[i], entry_free, n_entry_free, e_flow, e_link, e_coef,
                                    e_lnext, e_lprev, e_fnext, f_head, l_head, l_stat)
        k += counts[i]
    return n_flow_free, n_entry_free, n_seeds


@njit(cache=True, error_model="numpy", inline="always")
def _cut(e, link, l_head, e_lnext, e_lprev):
    """Entry e leaves its link's list (its own pointers are left as they were)."""
    nxt = e_lnext[e]
    prv = e_lprev[e]
    if prv != NONE:
        e_lnext[prv] = nxt
    else:
        l_head[link] = nxt
    if nxt != NONE:
        e_lprev[nxt] = prv


@njit(cache=True, error_model="numpy", inline="always")
def _unlink_entries(f, f_head, e_link, e_lnext, e_lprev, e_fnext, l_head, entry_free, n_entry_free,
                    seed_links, n_seed_links, link_mark, stamp, f_rate, e_coef, l_stat):
    """Remove flow f's entries from their links (their sums lose its share); the links become seeds."""
    e = f_head[f]
    rate = f_rate[f]
    while e != NONE:
        link = e_link[e]
        l_stat[L_SUM, link] -= e_coef[e] * rate
        l_stat[L_COEF, link] -= e_coef[e]
        _cut(e, link, l_head, e_lnext, e_lprev)
        if l_head[link] == NONE:  # the last one: exact zeros, whatever rounding the sums gathered
            l_stat[L_SUM, link] = 0.0
            l_stat[L_COEF, link] = 0.0
        if link_mark[link] != stamp:
            link_mark[link] = stamp
            seed_links[n_seed_links] = link
            n_seed_links += 1
        entry_free[n_entry_free] = e
        n_entry_free += 1
        e = e_fnext[e]
    f_head[f] = NONE
    return n_entry_free, n_seed_links


@njit(cache=True, error_model="numpy", inline="always")
def remove_flows(slots, f_alive, f_head, f_finish, e_link, e_lnext, e_lprev, e_fnext, l_head, flow_free, f_pos,
                 n_flow_free, entry_free, n_entry_free, seed_links, n_seed_links, link_mark, stamp, f_rate, e_coef,
                 l_stat):
    """Free drained flows and their entries; the links they used become seeds. `flow_free` is a permutation
    of the slots: free ones first (`[:n_flow_free]`, a stack), then the live ones; `f_pos` its inverse."""
    for i in range(len(slots)):
        f = slots[i]
        n_entry_free, n_seed_links = _unlink_entries(f, f_head, e_link, e_lnext, e_lprev, e_fnext, l_head,
                                                     entry_free, n_entry_free, seed_links, n_seed_links,
                                                     link_mark, stamp, f_rate, e_coef, l_stat)
        f_alive[f] = False
        f_finish[f] = np.inf
        g = flow_free[n_flow_free]  # the first live slot swaps places with f, which joins the free stack
        flow_free[f_pos[f]] = g
        f_pos[g] = f_pos[f]
        flow_free[n_flow_free] = f
        f_pos[f] = n_flow_free
        n_flow_free += 1
    return n_flow_free, n_entry_free, n_seed_links


@njit(cache=True, error_model="numpy", _nrt=False)
def _q_push(q_key, q_id, q_n, w, key, f, ver, sift=True):
    """Queue w gets (key, flow f at version ver); a binary min-heap on key (without `sift`, the entry is only
    appended: `rebuild_queues` orders the queue after)."""
    i = q_n[w]
    q_n[w] = i + 1
    while sift and i > 0:
        up = (i - 1) // 2
        if q_key[w, up] <= key:
            break
        q_key[w, i] = q_key[w, up]
        q_id[w, 0, i] = q_id[w, 0, up]
        q_id[w, 1, i] = q_id[w, 1, up]
        i = up
    q_key[w, i] = key
    q_id[w, 0, i] = f
    q_id[w, 1, i] = ver


@njit(cache=True, error_model="numpy", _nrt=False)
def _q_sift(q_key, q_id, w, i, n, key, f, ver):
    """Put (key, f, ver) in slot i of queue w's first n slots, or below it: the smaller child moves up
    while it is smaller than key (the heap below slot i is in order)."""
    while True:
        a = 2 * i + 1
        if a >= n:
            break
        if a + 1 < n and q_key[w, a + 1] < q_key[w, a]:
            a += 1
        if key <= q_key[w, a]:
            break
        q_key[w, i] = q_key[w, a]
        q_id[w, 0, i] = q_id[w, 0, a]
        q_id[w, 1, i] = q_id[w, 1, a]
        i = a
    if i < n:
        q_key[w, i] = key
        q_id[w, 0, i] = f
        q_id[w, 1, i] = ver


@njit(cache=True, error_model="numpy", _nrt=False)
def _q_pop(q_key, q_id, q_n, w):
    """Queue w loses its least entry."""
    n = q_n[w] - 1
    q_n[w] = n
    _q_sift(q_key, q_id, w, 0, n, q_key[w, n], q_id[w, 0, n], q_id[w, 1, n])


@njit(cache=True, error_model="numpy", _nrt=False)
def _drain_key(f, f_finish, f_rem, f_rate, f_size):
    """The first instant flow f passes the drain test of `drained` (-inf: already; inf: never at its rate)."""
    if f_rate[f] <= 0.0:
        return -np.inf if f_rem[f] <= FINISH_REL * f_size[f] else np.inf
    return min(f_finish[f] - FINISH_REL * f_size[f] / f_rate[f], f_finish[f] / (1.0 + FINISH_CLOCK))


@njit(cache=True, error_model="numpy", _nrt=False)
def _q_add(f, key, f_finish, f_ver, q_key, q_id, q_n, sift=True):
    """Flow f's entries in both queues (at its current version), its drain key `key` (`_drain_key`; `sift`:
    see `_q_push`)."""
    if f_finish[f] < np.inf:
        _q_push(q_key, q_id, q_n, Q_FINISH, f_finish[f], f, f_ver[f], sift)
    if key < np.inf:
        _q_push(q_key, q_id, q_n, Q_DRAIN, key, f, f_ver[f], sift)


@njit(cache=True, error_model="numpy", _nrt=False)
def rebuild_queues(flow_free, lo, hi, f_alive, f_finish, f_rem, f_rate, f_size, f_ver, q_key, q_id, q_n):
    """Both queues anew from the live flows `flow_free[lo:hi]` (their stale entries gone): their entries
    appended, then each queue put in heap order from the bottom up (a pass over them, not a push each)."""
    q_n[Q_FINISH] = 0
    q_n[Q_DRAIN] = 0
    for i in range(lo, hi):
        f = flow_free[i]
        if f_alive[f]:
            _q_add(f, _drain_key(f, f_finish, f_rem, f_rate, f_size), f_finish, f_ver, q_key, q_id, q_n, False)
    for w in (Q_FINISH, Q_DRAIN):
        n = q_n[w]
        for i in range(n // 2 - 1, -1, -1):
            _q_sift(q_key, q_id, w, i, n, q_key[w, i], q_id[w, 0, i], q_id[w, 1, i])


@njit(cache=True, error_model="numpy", _nrt=False)
def schedule(f, f_finish, f_rem, f_rate, f_size, f_ver, q_key, q_id, q_n, flow_free, lo, hi, f_alive, f_due):
    """Flow f's predicted drain changed and the queues are kept: its new version (the caller moved
    `f_ver[f]` on, and set its drain key `f_due[f]`; older entries are stale and dropped when they come up)
    goes in. A queue is rebuilt from
    the live flows first when it is full (it holds 4x the flow slots) or holds more than Q_STALE x the live
    flows (+64): stale entries cost every pop more levels of the heap (on the 1,024-GPU halving-doubling, with
    queues of up to 4x the slots, a pop cost ~85 ns; rebuilt at 2x, it pops 51k entries instead of 109k, and
    its loop took 59-63 ms instead of 66-76, best and median of 6 runs alternating)."""
    if (q_n[Q_FINISH] + 1 >= q_key.shape[1] or q_n[Q_DRAIN] + 1 >= q_key.shape[1]
            or max(q_n[Q_FINISH], q_n[Q_DRAIN]) > Q_STALE * (hi - lo) + 64):
        rebuild_queues(flow_free, lo, hi, f_alive, f_finish, f_rem, f_rate, f_size, f_ver, q_key, q_id, q_n)
    else:
        _q_add(f, f_due[f], f_finish, f_ver, q_key, q_id, q_n)


@njit(cache=True, error_model="numpy", inline="always")
def _done(f, now, f_rem, f_t, f_rate, f_size):
    """Flow f's bytes are gone at `now`, to within FINISH_REL of its size or FINISH_CLOCK of the clock."""
    left = f_rem[f] - f_rate[f] * (now - f_t[f])
    return left <= max(FINISH_REL * f_size[f], f_rate[f] * (FINISH_CLOCK * now))


@njit(cache=True, error_model="numpy", inline="always")
def _take(f, k, out, out_batch, out_index, f_batch, f_index, f_ver):
    """Flow f drained: the k-th of `out`; its version moves on (its queue entries go stale)."""
    out[k] = f
    out_batch[k] = f_batch[f]
    out_index[k] = f_index[f]
    f_ver[f] += 1
    return k + 1


@njit(cache=True, error_model="numpy", inline="always")
def drained(now, f_alive, f_rem, f_t, f_rate, f_size, f_batch, f_index, out, out_batch, out_index, f_finish, f_ver,
            q_key, q_id, q_n, flow_free, lo, hi, f_pos, f_due, w_key, w_idx):
    """Flows whose bytes are (within tolerance) gone at `now`, among the live slots `flow_free[lo:hi]`: their
    slots, batches and indices within the batch are written to `out`, `out_batch`, `out_index`; returns how
    many. With many live flows and few rate changes (`q_n`, see Q_PER_RATED; the queues start or stop
    here) only the drain queue's entries up to now (plus DRAIN_MARGIN) are looked at, each checked with the
    same exact test, and a drained flow's version moves on, so its other entries go stale; otherwise the live
    flows are scanned, and the exact test is made only where the flow's first instant to pass it (`f_due`,
    the drain queue's key, set where its rate is computed; -inf: unknown) is up to now plus DRAIN_MARGIN, as
    the queue's entries are."""
    q_n[Q_TICKS] += 1
    if q_n[Q_TICKS] == Q_WINDOW:
        q_n[Q_RATE] = q_n[Q_RATED]
        q_n[Q_RATED] = 0
        q_n[Q_TICKS] = 0
    scans = (hi - lo) * Q_WINDOW  # what scanning the live flows costs over a window, and keeping the queues:
    upkeep = q_n[Q_PER_RATED] * q_n[Q_RATE]
    if not q_n[Q_ON] and hi - lo >= q_n[Q_FROM] and scans >= upkeep:
        q_n[Q_ON] = 1
        rebuild_queues(flow_free, lo, hi, f_alive, f_finish, f_rem, f_rate, f_size, f_ver, q_key, q_id, q_n)
    elif q_n[Q_ON] and (hi - lo < q_n[Q_UNTIL] or 2 * scans < upkeep):
        q_n[Q_ON] = 0
    k = 0
    limit = now + DRAIN_MARGIN * abs(now)
    if not q_n[Q_ON]:
        dense = 4 * (hi - lo) > hi  # most slots live: a sequential scan of them all costs less than the list
        for i in range(0 if dense else lo, hi):
            f = i if dense else flow_free[i]
            if f_alive[f] and f_due[f] <= limit and _done(f, now, f_rem, f_t, f_rate, f_size):
                k = _take(f, k, out, out_batch, out_index, f_batch, f_index, f_ver)
        return k
    kept = 0  # entries looked at that did not pass: back in the queue afterwards (kept at the end of `out`)
    while q_n[Q_DRAIN] > 0 and q_key[Q_DRAIN, 0] <= limit:
        f = q_id[Q_DRAIN, 0, 0]
        ver = q_id[Q_DRAIN, 1, 0]
        _q_pop(q_key, q_id, q_n, Q_DRAIN)
        if not f_alive[f] or f_ver[f] != ver:
            continue
        if _done(f, now, f_rem, f_t, f_rate, f_size):
            k = _take(f, k, out, out_batch, out_index, f_batch, f_index, f_ver)
        else:
            kept += 1
            out[len(out) - kept] = f
    for i in range(kept):
        f = out[len(out) - 1 - i]
        _q_push(q_key, q_id, q_n, Q_DRAIN, _drain_key(f, f_finish, f_rem, f_rate, f_size), f, f_ver[f])
    if k > 1:  # in the order a scan finds them (what is freed and summed first moves last bits)
        dense = 4 * (hi - lo) > hi
        m = np.int64(0)
        for i in range(k):
            m = _heap_push(w_key, w_idx, m, float(out[i] if dense else f_pos[out[i]]), out[i])
        for i in range(k):
            f = w_idx[0]
            m = _heap_pop(w_key, w_idx, m)
            out[i] = f
            out_batch[i] = f_batch[f]
            out_index[i] = f_index[f]
    return k


@njit(cache=True, error_model="numpy", _nrt=False)
def drain(now, n_slots, f_alive, f_rem, f_t, f_rate, f_size, f_batch, f_index, out,
          out_batch, out_index, f_head, f_finish, e_link, e_lnext, e_lprev, e_fnext, l_head, flow_free, f_pos,
          n_flow_free, entry_free, n_entry_free, seed_links, n_seed_links, seed_link_mark, stamp, e_coef, l_stat,
          f_ver, q_key, q_id, q_n, f_due, w_key, w_idx):
    """`drained`, then `remove_flows` on what drained, in one call (one per event: calls cost microseconds).
    Returns (drained count, flow free count, entry free count, seed link count)."""
    k = drained(now, f_alive, f_rem, f_t, f_rate, f_size, f_batch, f_index, out, out_batch, out_index, f_finish, f_ver,
                q_key, q_id, q_n, flow_free, n_flow_free, n_slots, f_pos, f_due, w_key, w_idx)
    if k:
        n_flow_free, n_entry_free, n_seed_links = remove_flows(
            out[:k], f_alive, f_head, f_finish, e_link, e_lnext, e_lprev, e_fnext, l_head, flow_free, f_pos,
            n_flow_free, entry_free, n_entry_free, seed_links, n_seed_links, seed_link_mark, stamp, f_rate, e_coef,
            l_stat)
    return k, n_flow_free, n_entry_free, n_seed_links


@njit(cache=True, error_model="numpy", _nrt=False)
def _sort_link(link, l_head, e_lnext, e_lprev, e_flow, f_rate, flow_mark, stamp, keys, entries):
    """Put the link's list back in order of falling rate after a recomputation. Only the component's flows
    (marked `stamp`) changed rates; the others are still in order, so the
    component's entries are taken out, sorted, and merged back in: the list's length plus the sort of the
    few that moved; `keys` (-rate: ascending keys are falling rates) and `entries` are their heap's scratch (as
    long as the link's entries: the store sizes them for every entry)."""
    m = np.int64(0)
    e = l_head[link]
    while e != NONE:  # take the component's entries out
        nxt = e_lnext[e]
        if flow_mark[e_flow[e]] == stamp:
            _cut(e, link, l_head, e_lnext, e_lprev)
            m = _heap_push(keys, entries, m, -f_rate[e_flow[e]], e)
        e = nxt
    prev = NONE
    x = l_head[link]
    while m > 0:  # merge them back, in order, into the rest (in order already)
        e = entries[0]
        rate = -keys[0]
        m = _heap_pop(keys, entries, m)
        while x != NONE and f_rate[e_flow[x]] >= rate:
            prev = x
            x = e_lnext[x]
        e_lprev[e] = prev
        e_lnext[e] = x
        if prev == NONE:
            l_head[link] = e
        else:
            e_lnext[prev] = e
        if x != NONE:
            e_lprev[x] = e
        prev = e


@njit(cache=True, error_model="numpy", inline="always")
def _new_load(link, carried, load, demand, changed, n_changed, metered, since):
    """The link now carries `carried`. A load that did not change keeps running (nothing to account); a
    metered link's new load waits in `demand` (scratch by then) for `account`, listed in `changed`; an
    unmetered one (endpoint caps, beyond `since`) takes it at once. Returns the count listed."""
    if carried != load[link]:
        if metered and link < len(since):
            demand[link] = carried
            changed[n_changed] = link
            return n_changed + 1
        load[link] = carried
    return n_changed


@njit(cache=True, error_model="numpy", _nrt=False)
def _fill(level, comp_f, nf, comp_l, nl, f_rate, f_cap, residual, demand, count, capacity, l_head, e_lnext, e_flow,
          f_head, e_fnext, e_link, e_coef, frozen):
    """Progressive filling of flows `comp_f[:nf]` (rates set to -1: unfrozen) on links `comp_l[:nl]`, whose
    spare capacity for them is in `residual`, from `level`: every unfrozen flow rises together until a link
    saturates (residual <= SATURATED x capacity) or a flow reaches its cap, and the flows there freeze at
    that level. Each round costs the links still loaded, plus the entries of the flows it freezes. On return
    every flow has its rate, `residual` what each link has left, and `comp_l[:nl]` is in another order."""
    capped = False
    for i in range(nf):
        if f_cap[comp_f[i]] < np.inf:
            capped = True
    for i in range(nl):
        link = comp_l[i]
        demand[link] = 0.0
        count[link] = 0
    for i in range(nf):
        e = f_head[comp_f[i]]
        while e != NONE:
            demand[e_link[e]] += e_coef[e]
            count[e_link[e]] += 1
            e = e_fnext[e]
    if level > 0.0:  # flows start from it
        for j in range(nl):
            residual[comp_l[j]] -= level * demand[comp_l[j]]
    active = nl  # comp_l[:active]: links still carrying unfrozen flows
    unfrozen = nf
    while unfrozen > 0:
        inc = np.inf
        j = 0
        while j < active:
            link = comp_l[j]
            if count[link] == 0:
                active -= 1
                comp_l[j], comp_l[active] = comp_l[active], comp_l[j]
                continue
            share = residual[link] / demand[link]
            if share < inc:
                inc = share
            j += 1
        if capped:
            for i in range(nf):
                f = comp_f[i]
                if f_rate[f] < 0.0 and f_cap[f] - level < inc:
                    inc = f_cap[f] - level
        if inc == np.inf:
            break
        if inc < 0.0:
            inc = 0.0
        level += inc
        n_frozen = 0  # flows that stop rising at this level: on a saturated link, or at their cap
        for j in range(active):  # (one pass: a link's residual moves by its own demand alone this round)
            link = comp_l[j]
            residual[link] -= inc * demand[link]
            if count[link] > 0 and residual[link] <= SATURATED * capacity[link]:
                e = l_head[link]
                while e != NONE:
                    f = e_flow[e]
                    if f_rate[f] < 0.0:
                        f_rate[f] = level
                        frozen[n_frozen] = f
                        n_frozen += 1
                    e = e_lnext[e]
        if capped:
            for i in range(nf):
                f = comp_f[i]
                if f_rate[f] < 0.0 and f_cap[f] <= level * (1.0 + SATURATED):
                    f_rate[f] = level
                    frozen[n_frozen] = f
                    n_frozen += 1
        for i in range(n_frozen):  # their entries leave their links' unfrozen demand
            e = f_head[frozen[i]]
            while e != NONE:
                demand[e_link[e]] -= e_coef[e]
                count[e_link[e]] -= 1
                e = e_fnext[e]
        unfrozen -= n_frozen
    for i in range(nf):
        f = comp_f[i]
        if f_rate[f] < 0.0:
            f_rate[f] = level


@njit(cache=True, error_model="numpy", _nrt=False)
def _take_in(f, now, nf, nl, comp_f, comp_l, was, flow_mark, link_mark, stamp, f_rem, f_t, f_rate, f_head, e_fnext,
             e_link, e_coef, l_stat):
    """`_local` takes flow f in (its old rate kept in `was`, its bytes brought up to now, what it put on its
    links added to their L_MOVE); returns the new counts of flows and links."""
    flow_mark[f] = stamp
    comp_f[nf] = f
    was[nf] = f_rate[f]
    f_rem[f] -= f_rate[f] * (now - f_t[f])
    f_t[f] = now
    e = f_head[f]
    while e != NONE:
        link = e_link[e]
        if link_mark[link] != stamp:
            link_mark[link] = stamp
            comp_l[nl] = link
            nl += 1
            l_stat[L_MOVE, link] = 0.0
        l_stat[L_MOVE, link] += e_coef[e] * f_rate[f]
        e = e_fnext[e]
    return nf + 1, nl


@njit(cache=True, error_model="numpy", inline="always")
def _outside(e, e_lnext, e_flow, flow_mark, stamp):
    """Entry e of a link's list, or the first after it whose flow `_local` has not taken in (NONE: none).
    From the head: the fastest of those flows (the list is in order of the rates they keep)."""
    while e != NONE and flow_mark[e_flow[e]] == stamp:
        e = e_lnext[e]
    return e


@njit(cache=True, error_model="numpy", inline="always")
def _unmark(comp_f, nf, comp_l, nl, flow_mark, link_mark):
    """Flows `comp_f[:nf]` and links `comp_l[:nl]` are no longer marked (as before a search that gave up)."""
    for i in range(nf):
        flow_mark[comp_f[i]] = -1
    for j in range(nl):
        link_mark[comp_l[j]] = -1


@njit(cache=True, error_model="numpy", _nrt=False)
def _bottleneck(f, f_head, e_fnext, e_link, f_rate, f_cap, capacity, l_stat, link_mark, stamp, residual, demand,
                l_head, e_flow):
    """Flow f is at its cap, or one of its links is full (to LOCAL_TOL of its capacity) with no faster flow on
    it (to LOCAL_TOL of f's rate). For a link `_local` took in, what is left is in `residual` and the top rate
    is the larger of its taken-in flows' (`demand`) and the others' (L_TOP); any other link is as it was."""
    rate = f_rate[f]
    if rate >= f_cap[f] * (1.0 - LOCAL_TOL):
        return True
    e = f_head[f]
    while e != NONE:
        link = e_link[e]
        if link_mark[link] == stamp:
            spare = residual[link]
            top = max(demand[link], l_stat[L_TOP, link])
        else:
            spare = capacity[link] - l_stat[L_SUM, link]
            head = l_head[link]
            top = f_rate[e_flow[head]] if head != NONE else 0.0
        if spare <= LOCAL_TOL * capacity[link] and rate >= top * (1.0 - LOCAL_TOL):
            return True
        e = e_fnext[e]
    return False


@njit(cache=True, error_model="numpy", _nrt=False)
def _local(now, seeds, n_seeds, seed_links, n_seed_links, l_head, e_lnext, e_fnext, e_flow, e_link, e_coef, f_head,
           f_alive, f_rem, f_t, f_rate, f_cap, capacity, flow_mark, link_mark, stamp, comp_f, comp_l, demand, count,
           residual, frozen, l_stat, floor, was):
    """Max-min rates found from the seeds outward, taking in only the flows whose rates turn out to move;
    returns the counts of flows and links taken in (`comp_f`, `comp_l`, marked `stamp`), or -1, -1 when it
    gives up (then every rate and mark is as it was, the bytes of what it took in brought up to now).

    A rate vector is max-min fair exactly when every flow is at its cap or has a bottleneck: a full link on
    which no flow is faster. Between two events only the changed links (the seed links, where flows left or
    capacity moved, and the seeds' links) can break that, so the search starts from the seeds alone: their
    rates are filled in (`_fill`) with every other flow held at its rate, on what their links have left.
    Then it looks for flows without a bottleneck: a taken-in flow slower than another on each of its full
    links (those faster flows must give way: they are taken in), and, on every link taken in, the fastest
    of the other flows (its bottleneck may have been that link, or lost to a faster newcomer: taken in if
    it has none now; slower ones were bottlenecked elsewhere, and a link nothing changed keeps its flows,
    rates and load). What it took in is filled again from 0, with everything else held, until no flow lacks
    a bottleneck: then these are the max-min rates (they are unique), found at the cost of the flows that
    moved and the heads of their links. A pipelined collective, whose chunk leaves a path a latency before
    the next takes it, moves few flows per event however large the component they share. It gives up
    (and `recompute` follows the component) after LOCAL_ROUNDS fillings, beyond LOCAL_FLOWS flows, or if a
    link is over capacity (a degraded link). `was` (at least LOCAL_FLOWS long) keeps the rates of what it
    took in, in the order of `comp_f`, for giving up (and for `recompute`, which passes its `w_key`, as long as
    the flow slots: a component that `_component` collects after a give-up writes its old rates there too).
    """
    nf = 0
    nl = 0
    for i in range(n_seed_links):
        link = seed_links[i]
        if link_mark[link] != stamp:
            link_mark[link] = stamp
            comp_l[nl] = link
            nl += 1
            l_stat[L_MOVE, link] = 0.0
    ok = True
    for i in range(n_seeds):
        f = seeds[i]
        if f_alive[f] and flow_mark[f] != stamp:
            if nf >= LOCAL_FLOWS:
                ok = False
                break
            nf, nl = _take_in(f, now, nf, nl, comp_f, comp_l, was, flow_mark, link_mark, stamp, f_rem, f_t, f_rate,
                              f_head, e_fnext, e_link, e_coef, l_stat)
    for _ in range(LOCAL_ROUNDS):
        if not ok:
            break
        for j in range(nl):
            link = comp_l[j]
            residual[link] = capacity[link] - max(l_stat[L_SUM, link] - l_stat[L_MOVE, link], 0.0)
        for i in range(nf):
            f_rate[comp_f[i]] = -1.0
        _fill(0.0, comp_f, nf, comp_l, nl, f_rate, f_cap, residual, demand, count, capacity, l_head, e_lnext, e_flow,
              f_head, e_fnext, e_link, e_coef, frozen)
        for j in range(nl):  # each link's top rate: of its taken-in flows (demand), of the others (L_TOP)
            link = comp_l[j]
            if residual[link] < -LOCAL_TOL * capacity[link]:
                ok = False  # over capacity (its capacity fell): the component decides
            demand[link] = 0.0
            e = _outside(l_head[link], e_lnext, e_flow, flow_mark, stamp)
            l_stat[L_TOP, link] = f_rate[e_flow[e]] if e != NONE else 0.0
        if not ok:
            break
        for i in range(nf):
            f = comp_f[i]
            e = f_head[f]
            while e != NONE:
                if f_rate[f] > demand[e_link[e]]:
                    demand[e_link[e]] = f_rate[f]
                e = e_fnext[e]
        # (a link taken in during these checks has stale `residual`, `demand` and L_TOP until the next round's
        # filling; a round that takes anything in is always followed by one, so the round that returns reads
        # only fresh values)
        n_before = nf
        n_links = nl
        for i in range(n_before):  # a taken-in flow without a bottleneck: the faster flows on its full links
            f = comp_f[i]
            if _bottleneck(f, f_head, e_fnext, e_link, f_rate, f_cap, capacity, l_stat, link_mark, stamp, residual,
                           demand, l_head, e_flow):
                continue
            took = nf
            e = f_head[f]
            while e != NONE and ok:
                link = e_link[e]
                if residual[link] <= LOCAL_TOL * capacity[link]:
                    x = _outside(l_head[link], e_lnext, e_flow, flow_mark, stamp)
                    while x != NONE and f_rate[e_flow[x]] > f_rate[f] * (1.0 + LOCAL_TOL):
                        if nf >= LOCAL_FLOWS:
                            ok = False
                            break
                        nf, nl = _take_in(e_flow[x], now, nf, nl, comp_f, comp_l, was, flow_mark, link_mark, stamp,
                                          f_rem, f_t, f_rate, f_head, e_fnext, e_link, e_coef, l_stat)
                        x = _outside(e_lnext[x], e_lnext, e_flow, flow_mark, stamp)
                e = e_fnext[e]
            if nf == took:
                ok = False  # (no full link, or no faster flow on one: tolerance) the component decides
            if not ok:
                break
        for j in range(n_links):  # the fastest other flows of each link taken in
            if not ok:
                break
            link = comp_l[j]
            top = l_stat[L_TOP, link]
            x = _outside(l_head[link], e_lnext, e_flow, flow_mark, stamp)
            while x != NONE and f_rate[e_flow[x]] >= top * (1.0 - LOCAL_TOL) and f_rate[e_flow[x]] >= floor:
                g = e_flow[x]
                if not _bottleneck(g, f_head, e_fnext, e_link, f_rate, f_cap, capacity, l_stat, link_mark, stamp,
                                   residual, demand, l_head, e_flow):
                    if nf >= LOCAL_FLOWS:
                        ok = False
                        break
                    nf, nl = _take_in(g, now, nf, nl, comp_f, comp_l, was, flow_mark, link_mark, stamp, f_rem, f_t,
                                      f_rate, f_head, e_fnext, e_link, e_coef, l_stat)
                x = _outside(e_lnext[x], e_lnext, e_flow, flow_mark, stamp)
        if ok and nf == n_before:
            return nf, nl
    for i in range(nf):  # given up: everything as it was
        f_rate[comp_f[i]] = was[i]
    _unmark(comp_f, nf, comp_l, nl, flow_mark, link_mark)
    return -1, -1


@njit(cache=True, error_model="numpy", _nrt=False)
def _component(now, seeds, n_seeds, seed_links, n_seed_links, l_head, e_lnext, e_fnext, e_flow, e_link, e_coef, f_head,
               f_alive, f_rem, f_t, f_rate, capacity, flow_mark, link_mark, stamp, comp_f, comp_l, residual, l_stat,
               floor, limit, was):
    """The component connected to the seed flows and links through flows at or above `floor` (`recompute`),
    marked `stamp`, in `comp_f` and `comp_l`, with what each link has left for it in `residual`; its flows'
    bytes brought up to now, their old rates kept in `was` (in the order of `comp_f`) and their rates set to -1
    (unfrozen). Returns the counts of flows and links, how many seed links were left out (moved to the front
    of `seed_links`) and how many entries of link lists were walked. With more than `limit` flows it stops:
    nothing is marked and -1 flows are returned."""
    nf = 0
    nl = 0
    walked = 0
    for i in range(n_seeds):
        f = seeds[i]
        if f_alive[f] and flow_mark[f] != stamp:
            flow_mark[f] = stamp
            comp_f[nf] = f
            nf += 1
    n_skip = 0  # seed links left out (seed_links[:n_skip]): empty, or all their flows below the floor
    for i in range(n_seed_links):
        link = seed_links[i]
        head = l_head[link]
        if head == NONE or flow_mark[e_flow[head]] == stamp or f_rate[e_flow[head]] < floor:
            seed_links[i] = seed_links[n_skip]  # (a seed at the head brings its link in anyway)
            seed_links[n_skip] = link
            n_skip += 1
        elif link_mark[link] != stamp:
            link_mark[link] = stamp
            comp_l[nl] = link
            nl += 1
    i_f = 0
    i_l = 0
    while (i_f < nf or i_l < nl) and nf <= limit:  # closure: a flow pulls in its links, a link its flows
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
        while i_l < nl and nf <= limit:  # a link's list: seeds, then the rest by falling rate; only its head
            link = comp_l[i_l]
            e = l_head[link]
            i_l += 1
            moving = 0.0  # what the component's flows put on the link now
            while e != NONE:
                walked += 1
                f = e_flow[e]
                if flow_mark[f] != stamp:
                    if f_rate[f] < floor:
                        break  # it and all after it keep their rates
                    flow_mark[f] = stamp
                    comp_f[nf] = f
                    nf += 1
                moving += e_coef[e] * f_rate[f]
                e = e_lnext[e]
            # what the flows below the floor take of the link (none when the walk reached the end)
            fixed = max(l_stat[L_SUM, link] - moving, 0.0) if e != NONE else 0.0
            residual[link] = capacity[link] - fixed
    if nf > limit:
        _unmark(comp_f, nf, comp_l, nl, flow_mark, link_mark)
        return -1, -1, 0, walked
    for i in range(nf):
        f = comp_f[i]
        f_rem[f] -= f_rate[f] * (now - f_t[f])  # bytes up to now, at the old rate
        f_t[f] = now
        was[i] = f_rate[f]
        f_rate[f] = -1.0  # unfrozen
    return nf, nl, n_skip, walked


@njit(cache=True, error_model="numpy", inline="always")
def _rated(f, now, f_rem, f_rate, f_size, f_finish, f_due, f_ver, q_key, q_id, q_n, flow_free, n_free, n_slots,
           f_alive):
    """Flow f has its new rate (its bytes are as of now): its predicted drain, drain key and queue entries."""
    f_finish[f] = now + f_rem[f] / f_rate[f] if f_rate[f] > 0.0 else np.inf
    f_due[f] = _drain_key(f, f_finish, f_rem, f_rate, f_size)
    f_ver[f] += 1
    q_n[Q_RATED] += 1
    if q_n[Q_ON]:
        schedule(f, f_finish, f_rem, f_rate, f_size, f_ver, q_key, q_id, q_n, flow_free, n_free, n_slots, f_alive,
                 f_due)


@njit(cache=True, error_model="numpy", _nrt=False)
def recompute(now, seeds, n_seeds, seed_links, n_seed_links, l_head, e_lnext, e_lprev, e_fnext, e_flow, e_link, e_coef,
              f_head, f_alive, f_rem, f_t, f_rate, f_cap, f_finish, f_due, capacity, load, flow_mark, link_mark,
              stamp, comp_f, comp_l, demand, count, residual, frozen, changed, metered, since, total, peak, log_f,
              log_link, log_n, n_slots, flow_free, n_free, l_stat, f_size, f_ver, q_key, q_id, q_n, w_key, w_idx, local,
              floor=0.0):
    """Max-min rates for the component connected to the seed flows and links. Returns its flow count (or
    how many flows `_local` took in), the earliest predicted drain over the live flows,
    `flow_free[n_free:n_slots]` (the next wake-up), how many entries of link lists it walked (what following
    the component through links cost), and whether `_local` settled it with flows to rate (a recomputation
    that rated none, such as one only links a flow left were seeds of, is not counted).

    `local`: a component of more flows than this is first settled from what changed (`_local`), and filled
    whole only if that gives up; -1: never.

    `floor` (a level no rate below which can change, see `change_floor`; 0: none known) limits the work to
    what can move: the component is followed only through flows whose rate is at least `floor` (and the
    seeds); flows below it keep their rates and only take their share off the links' capacity, and the
    filling starts at `floor` instead of 0.

    `flow_mark`/`link_mark` hold `stamp` for what this call visits (the caller bumps the stamp, so
    nothing is cleared). `comp_f`, `comp_l`, `demand`, `count`, `residual`, `frozen` (per flow slot), `w_key`,
    `w_idx` (per flow or entry slot, whichever are more) and `changed` (per link) are scratch space. With
    `metered`, a link's old load is added to the meter's arrays (`since`, `total`, `peak`, and the log
    `log_f`, `log_link`, `log_n`: see `account`) just before it changes, so the meter costs what changed too
    (links with no entries beyond the real links, such as endpoint caps, are never metered: `since` covers
    the real links).

    A flow of the component whose rate came out as it was, with its predicted drain the same to the bit, keeps
    its drain key, version and queue entries (on the 1,024-GPU pipelined tree 59% of the flows rated, on the
    halving-doubling 25%: their loops ran 12% and ~2% faster, the results bit-identical). One whose drain
    moved only in its last bits is rated all the same: such bits move a chaotic run's end by a percent.
    """
    settled = False  # (by `_local`)
    # a small component is filled at once; a larger one is first settled from what changed, if it can be
    nf, nl, n_skip, walked = _component(now, seeds, n_seeds, seed_links, n_seed_links, l_head, e_lnext, e_fnext,
                                        e_flow, e_link, e_coef, f_head, f_alive, f_rem, f_t, f_rate, capacity,
                                        flow_mark, link_mark, stamp, comp_f, comp_l, residual, l_stat, floor,
                                        local if local >= 0 else n_slots, w_key)
    if nf < 0:
        nf, nl = _local(now, seeds, n_seeds, seed_links, n_seed_links, l_head, e_lnext, e_fnext, e_flow, e_link,
                        e_coef, f_head, f_alive, f_rem, f_t, f_rate, f_cap, capacity, flow_mark, link_mark, stamp,
                        comp_f, comp_l, demand, count, residual, frozen, l_stat, floor, w_key)
        settled = nf >= 0  # (n_skip is 0: the stopped search left none out)
    if nf < 0:
        nf, nl, n_skip, more = _component(now, seeds, n_seeds, seed_links, n_seed_links, l_head, e_lnext, e_fnext,
                                          e_flow, e_link, e_coef, f_head, f_alive, f_rem, f_t, f_rate, capacity,
                                          flow_mark, link_mark, stamp, comp_f, comp_l, residual, l_stat, floor,
                                          n_slots, w_key)
        walked += more
    if not settled:
        _fill(floor, comp_f, nf, comp_l, nl, f_rate, f_cap, residual, demand, count, capacity, l_head, e_lnext,
              e_flow, f_head, e_fnext, e_link, e_coef, frozen)
    for i in range(nf):  # (`w_key[i]`: flow comp_f[i]'s old rate, kept by `_component` or `_local`)
        f = comp_f[i]
        if f_rate[f] == w_key[i] and w_key[i] > 0.0 and now + f_rem[f] / f_rate[f] == f_finish[f]:
            continue  # the same rate and drain to the bit: its drain key and queue entries still hold
        _rated(f, now, f_rem, f_rate, f_size, f_finish, f_due, f_ver, q_key, q_id, q_n, flow_free, n_free, n_slots,
               f_alive)
    # links whose load changed (a load that did not keeps running: nothing to account); not a literal 0,
    # for which numba would compile `account` once more
    n_changed = np.int64(0)
    for i in range(n_skip):  # left out (unless a seed brought them in): their flows keep their rates
        link = seed_links[i]
        if link_mark[link] != stamp:
            link_mark[link] = stamp
            n_changed = _new_load(link, max(l_stat[L_SUM, link], 0.0), load, demand, changed, n_changed, metered,
                                  since)
    for i in range(nl):
        link = comp_l[i]
        carried = 0.0
        coefs = 0.0
        ordered = True  # (seeds first, then by falling rate: see the module's docstring)
        last = np.inf
        e = l_head[link]
        while e != NONE:
            f = e_flow[e]
            carried += e_coef[e] * f_rate[f]
            coefs += e_coef[e]
            if f_rate[f] > last:
                ordered = False
            last = f_rate[f]
            e = e_lnext[e]
        if not ordered:
            _sort_link(link, l_head, e_lnext, e_lprev, e_flow, f_rate, flow_mark, stamp, w_key, w_idx)
        l_stat[L_SUM, link] = carried  # exact again (removals since the last walk only subtracted)
        l_stat[L_COEF, link] = coefs
        n_changed = _new_load(link, carried, load, demand, changed, n_changed, metered, since)
    if n_changed:
        account(changed, n_changed, demand, now, load, since, total, peak, log_f, log_link, log_n)
    return (nf, next_finish(f_alive, f_ver, q_key, q_id, q_n, flow_free, n_free, n_slots, f_finish), walked,
            settled and nf > 0)


@njit(cache=True, error_model="numpy", inline="always")
def change_floor(seeds, n_seeds, f_cap, f_head, e_fnext, e_link, capacity, l_stat):
    """A level below which no max-min rate changes when the `seeds` (new flows, already on their links) have
    come; with flows that left the same instant, the least of this and the least of their rates.

    Progressive filling freezes a flow at the first level where one of its links saturates, so links that
    saturate below a removed flow's rate r do not carry it: without it, every freeze below r happens as
    before. A new flow's links each saturate at a level of at least capacity / (the coefficients of all
    their entries, the new flow's included) — every flow on a link rising together is the fastest it can
    fill — so the new flow freezes at no less than the least of those (or its cap), and the links it joins
    saturated no lower before it came. Below the smallest of these bounds, old and new filling freeze the
    same flows at the same levels. Returns that bound (0: none helps), a hair low (FLOOR_MARGIN): the
    coefficient sums `l_stat[L_COEF]` are kept by adding and subtracting, and a bound only has to be low.
    """
    floor = np.inf
    for i in range(n_seeds):
        f = seeds[i]
        if f_cap[f] < floor:
            floor = f_cap[f]
        e = f_head[f]
        while e != NONE:
            total = l_stat[L_COEF, e_link[e]]
            if total > 0.0 and capacity[e_link[e]] / total < floor:
                floor = capacity[e_link[e]] / total
            e = e_fnext[e]
        if floor <= 0.0:
            return 0.0
    floor *= 1.0 - FLOOR_MARGIN
    return floor if floor < np.inf and floor > 0.0 else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def next_finish(f_alive, f_ver, q_key, q_id, q_n, flow_free, lo, hi, f_finish):
    """The earliest predicted drain over the live flows `flow_free[lo:hi]` (inf: none): the finish queue's
    least entry that is not stale, or (without queues) a scan."""
    if not q_n[Q_ON]:
        best = np.inf
        if 4 * (hi - lo) > hi:  # most slots live: a sequential scan (free slots hold inf)
            for f in range(hi):
                if f_finish[f] < best:
                    best = f_finish[f]
            return best
        for i in range(lo, hi):
            if f_finish[flow_free[i]] < best:
                best = f_finish[flow_free[i]]
        return best
    while q_n[Q_FINISH] > 0:
        f = q_id[Q_FINISH, 0, 0]
        if f_alive[f] and f_ver[f] == q_id[Q_FINISH, 1, 0]:
            return q_key[Q_FINISH, 0]
        _q_pop(q_key, q_id, q_n, Q_FINISH)
    return np.inf


@njit(cache=True, error_model="numpy", _nrt=False)
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


@njit(cache=True, error_model="numpy", _nrt=False)
def drop_entries(f, f_head, e_link, e_lnext, e_lprev, e_fnext, l_head, entry_free, n_entry_free, seed_links,
                 n_seed_links, link_mark, stamp, f_rate, e_coef, l_stat):
    """Unlink flow f's entries (it is about to get new ones: a reroute)."""
    return _unlink_entries(f, f_head, e_link, e_lnext, e_lprev, e_fnext, l_head, entry_free, n_entry_free,
                           seed_links, n_seed_links, link_mark, stamp, f_rate, e_coef, l_stat)


@njit(cache=True, error_model="numpy", _nrt=False)
def add_entries(f, links, coefs, entry_free, n_entry_free, e_flow, e_link, e_coef, e_lnext, e_lprev, e_fnext,
                f_head, l_head, l_stat):
    """Give flow f the entries (links, coefs); f's rate must be 0 (a seed, see `link_entries`)."""
    return link_entries(f, links, coefs, 0, len(links), entry_free, n_entry_free, e_flow, e_link, e_coef, e_lnext,
                        e_lprev, e_fnext, f_head, l_head, l_stat)


@njit(cache=True, error_model="numpy")
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


# ---- dataflows: the loop `fluid_dataflow` runs (kept in this file: numba's cache of a function is
# refreshed when its own file changes, not when a function it calls in another file does) ----

PROGRAM = -2  # `f_batch` of a flow that belongs to a dataflow run in the loop (Python batches are >= 0)
PATH_BITS = 16  # `f_index` of such a flow: transfer << PATH_BITS | (path index + 1)

# why `advance` returned
IDLE, DONE, FOREIGN, ROOM, METER, ONE, UNROUTED = range(7)

# slots of the loop's int64 state vector `ps`
# (P_MOVING: transfers of the loop with bytes still draining; P_RATED: flows whose rates were recomputed,
# summed over the recomputations, what max-min cost; P_WALKED: entries of link lists they walked;
# P_JOINED: flow records that joined a flow of their class instead of making one, `_same_flow`; P_CLASSES:
# 1 when they may; P_LOCAL: components of more flows than this are first settled by `_local`, -1: none;
# P_SETTLED: how many it settled)
P_HEAP, P_SENT, P_PHASE, P_CURSOR, P_READY, P_FOREIGN, P_RATES, P_NEED_F, P_NEED_E, P_UNROUTED, P_NOTE, \
    P_MOVING, P_RATED, P_WALKED, P_JOINED, P_CLASSES, P_LOCAL, P_SETTLED, P_N = range(19)
# slots of the store's int64 counters `sc`
S_FLOW_FREE, S_ENTRY_FREE, S_SEEDS, S_SEED_LINKS, S_STAMP = range(5)


@njit(cache=True, error_model="numpy", _nrt=False)
def _heap_push(h_t, h_p, n, t, p):
    i = n
    h_t[i] = t
    h_p[i] = p
    while i > 0:
        up = (i - 1) // 2
        if h_t[up] <= h_t[i]:
            break
        h_t[up], h_t[i] = h_t[i], h_t[up]
        h_p[up], h_p[i] = h_p[i], h_p[up]
        i = up
    return n + 1


@njit(cache=True, error_model="numpy", _nrt=False)
def _heap_pop(h_t, h_p, n):
    n -= 1
    h_t[0] = h_t[n]
    h_p[0] = h_p[n]
    i = 0
    while True:
        a = 2 * i + 1
        if a >= n:
            break
        b = a + 1
        c = b if b < n and h_t[b] < h_t[a] else a
        if h_t[i] <= h_t[c]:
            break
        h_t[c], h_t[i] = h_t[i], h_t[c]
        h_p[c], h_p[i] = h_p[i], h_p[c]
        i = c
    return n


@njit(cache=True, error_model="numpy", _nrt=False)
def _arrivals(now, n, dr_p, dr_end, t_lat, t_end, h_t, h_p, ps):
    """Transfers dr_p[:n] sent their last byte at `now`: each ends a latency later; ends closer than
    ARRIVAL_TOLERANCE (relative) are delivered together, at the latest of them."""
    same = True
    for i in range(n):
        p = dr_p[i]
        dr_end[i] = now + t_lat[p]
        t_end[p] = dr_end[i]
        if dr_end[i] != dr_end[0]:
            same = False
    if same:
        for i in range(n):
            ps[P_HEAP] = _heap_push(h_t, h_p, ps[P_HEAP], dr_end[0], dr_p[i])
        return
    # ends in ascending order, through a heap (the loop's own heap code: np.argsort costs a second of
    # compile time on first use) built in place in dr_end[:m], dr_p[:m]; each popped end goes to the slot the
    # heap just freed, so the array ends up in descending order; ties do not matter, equal ends fall in one
    # group either way
    m = np.int64(0)  # (not a literal 0: numba would compile the heap helpers once more for it)
    for i in range(n):
        m = _heap_push(dr_end, dr_p, m, dr_end[i], dr_p[i])
    for i in range(n):
        t = dr_end[0]
        p = dr_p[0]
        m = _heap_pop(dr_end, dr_p, m)
        dr_end[m] = t
        dr_p[m] = p
    gap = ARRIVAL_TOLERANCE * max(abs(dr_end[0]), 1e-9)
    hi = n - 1  # the earliest end not yet delivered (a group runs from it down to the next gap)
    for i in range(n - 2, -2, -1):
        if i < 0 or dr_end[i] - dr_end[i + 1] > gap:
            t = dr_end[i + 1]
            for j in range(hi, i, -1):
                ps[P_HEAP] = _heap_push(h_t, h_p, ps[P_HEAP], t, dr_p[j])
            hi = i


@njit(cache=True, error_model="numpy", inline="always")
def _same_flow(a, b, fl_bytes, fl_cap, fl_ent_lo, fl_ent_hi, en_link, en_coef, fl_owner, t_run):
    """Flow records a and b (of one dataflow run) carry the same bytes at the same cap over the same links
    with the same coefficients.

    Flow classes: such records sent at one instant (before any rate is computed: the class table's stamp
    is the store's, which moves on with every recomputation and with every change Python makes to flows)
    are one flow of the kernel, `_join`ed, whose coefficients are the sum of theirs: the same max-min rates
    to the last rounding (a member's rate is the class's; each link carries the members' sum), at the cost
    of one flow. Its members' records form a chain (`fl_next`) from the record that made the flow, so
    its drain ends each member's transfer part. A multi-channel collective (NCCL's channels between the
    same pair of GPUs) costs per class, not per channel. Returns False for a record that is not live
    (the table's slot `a` of another instant or run is never compared: the stamp sees to the first)."""
    if a < 0 or fl_bytes[a] != fl_bytes[b] or fl_cap[a] != fl_cap[b] or t_run[fl_owner[a]] != t_run[fl_owner[b]]:
        return False
    n = fl_ent_hi[a] - fl_ent_lo[a]
    if fl_ent_hi[b] - fl_ent_lo[b] != n:
        return False
    for i in range(n):
        if en_link[fl_ent_lo[a] + i] != en_link[fl_ent_lo[b] + i] or \
                en_coef[fl_ent_lo[a] + i] != en_coef[fl_ent_lo[b] + i]:
            return False
    return True


@njit(cache=True, error_model="numpy", inline="always")
def _join(f, lead, fl, fl_next, fl_ent_lo, fl_ent_hi, en_coef, f_head, e_fnext, e_link, e_coef, l_stat):
    """Record fl joins flow f (made from record `lead`, not yet rated: `_same_flow`): next in lead's chain,
    its coefficients added to f's entries (f's chain holds lead's entries last to first)."""
    fl_next[fl] = fl_next[lead]
    fl_next[lead] = fl
    e = f_head[f]
    k = fl_ent_hi[fl] - 1
    while e != NONE:
        e_coef[e] += en_coef[k]
        l_stat[L_COEF, e_link[e]] += en_coef[k]
        k -= 1
        e = e_fnext[e]


@njit(cache=True, error_model="numpy", inline="always")
def _first_record(index, t_fl_lo, t_fl_hi, fl_path):
    """The flow record a loop flow was made from (its `f_index`: transfer << PATH_BITS | path + 1)."""
    p = index >> PATH_BITS
    path = (index & ((1 << PATH_BITS) - 1)) - 1
    for fl in range(t_fl_lo[p], t_fl_hi[p]):
        if fl_path[fl] == path:
            return fl
    return t_fl_lo[p]


@njit(cache=True, error_model="numpy", inline="always")
def _count_down(g, g_count, ready, ps):
    g_count[g] -= 1
    if g_count[g] == 0:
        ready[ps[P_READY]] = g
        ps[P_READY] += 1


@njit(cache=True, error_model="numpy", _nrt=False)
def advance(now, horizon, log_room, one_instant, sc, n_slots, f_alive, f_rem, f_t, f_rate, f_size, f_cap, f_batch,
            f_index, f_finish, f_head, flow_mark, seed_mark, seeds, comp_f, scratch, scratch_batch, scratch_index,
            e_flow, e_link, e_coef, e_lnext, e_lprev, e_fnext, l_head, link_mark, seed_link_mark, seed_links, comp_l,
            demand, count, residual, frozen, changed, load, flow_free, f_pos, entry_free, capacity, metered, since, total,
            peak, log_f, log_link, log_n, ps, fs,
            g_count, g_delay, g_succ_lo, g_succ_hi, g_send_lo, g_send_hi, g_fire, g_run, g_hook, succ, send,
            t_tgt_lo, t_tgt_hi, tgt, t_fl_lo, t_fl_hi, fl_bytes, fl_cap, fl_path, fl_ent_lo, fl_ent_hi, en_link,
            en_coef, t_lat, t_unrouted, t_parts, t_start, t_end, t_order, h_t, h_p, ready, dr_p, dr_end, note, t_run,
            fl_owner, fl_next, fl_hash, cls_f, cls_fl, cls_stamp, l_stat, f_ver, q_key, q_id, q_n, f_due, w_key,
            w_idx):
    """Run instants from `now` while the next one comes before `horizon`; returns why it stopped (`fs[0]`:
    the last instant handled, `fs[1]`: the next one). The loop is described in `fluid_dataflow`; flow
    classes (`cls_*`, `fl_next`) in `_same_flow`."""
    while True:
        if ps[P_PHASE] == 0:  # a fresh instant
            if metered and log_n[0] > log_room:  # the meter's log is full: Python bins it
                fs[0] = now
                return METER
            fs[0] = now
            k = drained(now, f_alive, f_rem, f_t, f_rate, f_size, f_batch, f_index, scratch, scratch_batch,
                        scratch_index, f_finish, f_ver, q_key, q_id, q_n, flow_free, sc[S_FLOW_FREE], n_slots, f_pos,
                        f_due, w_key, w_idx)
            fs[2] = np.inf  # the least rate that drained now (see change_floor)
            for i in range(k):
                if f_rate[scratch[i]] < fs[2]:
                    fs[2] = f_rate[scratch[i]]
            n_foreign = 0
            n_done = np.int64(0)  # (likewise, for `_arrivals`)
            if k:
                sc[S_FLOW_FREE], sc[S_ENTRY_FREE], sc[S_SEED_LINKS] = remove_flows(
                    scratch[:k], f_alive, f_head, f_finish, e_link, e_lnext, e_lprev, e_fnext, l_head, flow_free, f_pos,
                    sc[S_FLOW_FREE], entry_free, sc[S_ENTRY_FREE], seed_links, sc[S_SEED_LINKS], seed_link_mark,
                    sc[S_STAMP], f_rate, e_coef, l_stat)
                for i in range(k):
                    if scratch_batch[i] == PROGRAM:  # its transfer's part, and those of its class's members
                        fl = _first_record(scratch_index[i], t_fl_lo, t_fl_hi, fl_path)
                        while True:
                            p = fl_owner[fl]
                            t_parts[p] -= 1
                            if t_parts[p] == 0:
                                dr_p[n_done] = p
                                n_done += 1
                                ps[P_MOVING] -= 1
                            fl = fl_next[fl]
                            if fl == NONE:
                                break
                    else:  # another sender's flow: Python's to handle
                        scratch_batch[n_foreign] = scratch_batch[i]
                        scratch_index[n_foreign] = scratch_index[i]
                        n_foreign += 1
            ps[P_FOREIGN] = n_foreign
            if n_done:
                _arrivals(now, n_done, dr_p, dr_end, t_lat, t_end, h_t, h_p, ps)
            while ps[P_HEAP] > 0 and h_t[0] == now:  # arrivals and timers due now count their gates down
                p = h_p[0]
                ps[P_HEAP] = _heap_pop(h_t, h_p, ps[P_HEAP])
                if p >= 0:
                    for q in range(t_tgt_lo[p], t_tgt_hi[p]):
                        _count_down(tgt[q], g_count, ready, ps)
                else:
                    g = -p - 1
                    for q in range(g_succ_lo[g], g_succ_hi[g]):
                        _count_down(succ[q], g_count, ready, ps)
            ps[P_PHASE] = 1
            ps[P_CURSOR] = 0
        # gates whose count reached zero fire, in that order (resumable: storage may run out)
        i = ps[P_CURSOR]
        while i < ps[P_READY]:
            g = ready[i]
            need_f = 0
            need_e = 0
            for q in range(g_send_lo[g], g_send_hi[g]):
                p = send[q]
                if t_fl_hi[p] > t_fl_lo[p]:  # a transfer's flows, and their entries, are contiguous
                    need_f += t_fl_hi[p] - t_fl_lo[p]
                    need_e += fl_ent_hi[t_fl_hi[p] - 1] - fl_ent_lo[t_fl_lo[p]]
            if need_f > sc[S_FLOW_FREE] or need_e > sc[S_ENTRY_FREE]:
                ps[P_CURSOR] = i
                ps[P_NEED_F] = need_f
                ps[P_NEED_E] = need_e
                return ROOM
            g_fire[g] = now
            for q in range(g_send_lo[g], g_send_hi[g]):
                p = send[q]
                if t_unrouted[p]:  # its route could not be found: Python raises the error now
                    ps[P_UNROUTED] = p
                    return UNROUTED
                t_start[p] = now
                t_order[p] = ps[P_SENT]
                ps[P_SENT] += 1
                parts = 0
                for fl in range(t_fl_lo[p], t_fl_hi[p]):
                    if fl_bytes[fl] > 0:
                        parts += 1
                        h = fl_hash[fl] & (len(cls_f) - 1)
                        if ps[P_CLASSES] and cls_stamp[h] == sc[S_STAMP] and _same_flow(cls_fl[h], fl, fl_bytes, fl_cap, fl_ent_lo,
                                                                       fl_ent_hi, en_link, en_coef, fl_owner, t_run):
                            _join(cls_f[h], cls_fl[h], fl, fl_next, fl_ent_lo, fl_ent_hi, en_coef, f_head, e_fnext,
                                  e_link, e_coef, l_stat)
                            ps[P_JOINED] += 1
                            continue
                        sc[S_FLOW_FREE] -= 1
                        f = flow_free[sc[S_FLOW_FREE]]
                        index = (p << PATH_BITS) | (fl_path[fl] + 1)
                        sc[S_SEEDS] = new_flow(f, now, fl_bytes[fl], fl_cap[fl], PROGRAM, index, f_alive, f_rem,
                                               f_t, f_rate, f_size, f_cap, f_batch, f_index, f_finish, f_due,
                                               f_head, seeds, sc[S_SEEDS], seed_mark, sc[S_STAMP])
                        sc[S_ENTRY_FREE] = link_entries(
                            f, en_link, en_coef, fl_ent_lo[fl], fl_ent_hi[fl], entry_free, sc[S_ENTRY_FREE], e_flow,
                            e_link, e_coef, e_lnext, e_lprev, e_fnext, f_head, l_head, l_stat)
                        cls_f[h] = f
                        cls_fl[h] = fl
                        cls_stamp[h] = sc[S_STAMP]
                t_parts[p] = parts
                if parts > 0:
                    ps[P_MOVING] += 1
                if parts == 0:  # nothing to move: it arrives a latency from now
                    t_end[p] = now + t_lat[p]
                    ps[P_HEAP] = _heap_push(h_t, h_p, ps[P_HEAP], t_end[p], p)
            if g_run[g] >= 0:  # a dataflow's done gate: Python fires its event
                note[ps[P_NOTE]] = g_run[g]
                ps[P_NOTE] += 1
            elif g_hook[g]:  # a hook gate: Python calls its run's on_fire
                note[ps[P_NOTE]] = -g - 1
                ps[P_NOTE] += 1
            if g_delay[g] > 0:
                ps[P_HEAP] = _heap_push(h_t, h_p, ps[P_HEAP], now + g_delay[g], -g - 1)
            else:
                for q in range(g_succ_lo[g], g_succ_hi[g]):
                    _count_down(succ[q], g_count, ready, ps)
            i += 1
        ps[P_READY] = 0
        ps[P_CURSOR] = 0
        ps[P_PHASE] = 0
        if sc[S_SEEDS] or sc[S_SEED_LINKS]:
            # the least rate that drained now (inf: none; see change_floor), a hair low: flows at one level
            # can differ in their last bits when their rates were found in different recomputations
            floor = fs[2] * (1.0 - FLOOR_MARGIN)
            if sc[S_SEEDS] and floor > 0.0:  # and what the new flows allow
                floor = min(floor, change_floor(seeds, sc[S_SEEDS], f_cap, f_head, e_fnext, e_link, capacity, l_stat))
            if floor == np.inf:
                floor = 0.0
            nf, nxt, walked, settled = recompute(
                now, seeds, sc[S_SEEDS], seed_links, sc[S_SEED_LINKS], l_head, e_lnext, e_lprev, e_fnext, e_flow,
                e_link, e_coef, f_head, f_alive, f_rem, f_t, f_rate, f_cap, f_finish, f_due, capacity, load, flow_mark,
                link_mark, sc[S_STAMP], comp_f, comp_l, demand, count, residual, frozen, changed, metered, since, total,
                peak, log_f, log_link, log_n, n_slots, flow_free, sc[S_FLOW_FREE], l_stat, f_size, f_ver, q_key, q_id, q_n,
                w_key, w_idx, ps[P_LOCAL], floor)
            if nf > 0:
                ps[P_RATES] += 1
                ps[P_RATED] += nf
            ps[P_WALKED] += walked
            ps[P_SETTLED] += settled
        else:
            nxt = next_finish(f_alive, f_ver, q_key, q_id, q_n, flow_free, sc[S_FLOW_FREE], n_slots, f_finish)
        sc[S_SEEDS] = 0
        sc[S_SEED_LINKS] = 0
        sc[S_STAMP] += 1
        if ps[P_HEAP] > 0 and h_t[0] < nxt:
            nxt = h_t[0]
        fs[1] = nxt
        if ps[P_NOTE] > 0:
            return DONE
        if ps[P_FOREIGN] > 0:
            return FOREIGN
        if one_instant:
            return ONE
        if nxt >= horizon or nxt == np.inf:  # SimPy's events at the horizon go first (as a stop at `until`)
            return IDLE
        now = nxt
