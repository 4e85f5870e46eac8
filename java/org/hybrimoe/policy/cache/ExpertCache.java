package org.hybrimoe.policy.cache;

import java.util.Arrays;
import org.hybrimoe.policy.sched.SlotAllocator;

/**
 * The GPU expert cache: which (layer, expert) pairs hold a GPU slot, and the replacement policy
 * that picks a victim when a transfer needs a slot (ALGORITHMS.md section 4). Subclasses give a
 * priority (lowest evicted first) and update it from routing observations.
 *
 * <p>Capacity is per layer (each MoE layer owns {@code slots / layers} slots, numbered
 * {@code layer * perLayer + i}) or global (one pool of {@code slots}). Eviction never picks an
 * expert the layer being planned needs, nor one still in flight; when nothing can be evicted the
 * transfer goes to a staging buffer ({@link SlotAllocator#STAGING}). Keys are {@code layer *
 * experts + expert}. Not thread-safe: one per simulated (or real) engine.
 */
public abstract class ExpertCache implements SlotAllocator {
  /** Where slots live. */
  public enum Capacity {
    PER_LAYER,
    GLOBAL
  }

  protected final int layers;
  protected final int experts;
  private final Capacity capacity;
  private final int slots;
  private final int perPool; // slots per pool
  private final int[] slotKey; // [slots] key held, -1 free
  private final int[] keySlot; // [layers * experts] slot, -1 absent
  private final double[] arrival; // [layers * experts] ms when an in-flight copy lands
  private final boolean[] prefetchedUnused; // landed by prefetch, not yet used
  private final int[] neededStamp;
  private int stamp;
  private final int[] busyStamp; // keys the executing layer computes now: never evicted
  private int busyEpoch = 1;
  private double now;
  private long prefetchUsed;
  private long prefetchWasted;
  private long evictions;

  protected ExpertCache(int layers, int experts, int slots, Capacity capacity) {
    if (layers <= 0 || experts <= 0) {
      throw new IllegalArgumentException("layers and experts must be positive");
    }
    if (slots < 0 || slots > layers * experts) {
      throw new IllegalArgumentException("cache slots " + slots + " outside [0, " + layers * experts + "]");
    }
    this.layers = layers;
    this.experts = experts;
    this.capacity = capacity;
    this.perPool = capacity == Capacity.PER_LAYER ? slots / layers : slots;
    this.slots = capacity == Capacity.PER_LAYER ? perPool * layers : slots;
    this.slotKey = new int[this.slots];
    Arrays.fill(slotKey, -1);
    this.keySlot = new int[layers * experts];
    Arrays.fill(keySlot, -1);
    this.arrival = new double[layers * experts];
    this.prefetchedUnused = new boolean[layers * experts];
    this.neededStamp = new int[layers * experts];
    this.busyStamp = new int[layers * experts];
  }

  /** Marks the experts the executing layer computes on the GPU as not evictable until the next call. */
  public void setBusy(int layer, int[] experts) {
    busyEpoch++;
    for (int e : experts) {
      busyStamp[layer * this.experts + e] = busyEpoch;
    }
  }

  /** Sets when a just-allocated expert's copy lands (the transfer's end). */
  public void setArrival(int layer, int expert, double arrivalMs) {
    arrival[layer * experts + expert] = arrivalMs;
  }

  /** Slots for a cache ratio (fraction of all routed experts), validated. */
  public static int slotsFor(double ratio, int layers, int experts) {
    if (!(ratio >= 0 && ratio <= 1)) {
      throw new IllegalArgumentException("cache ratio " + ratio + " outside [0, 1]");
    }
    return (int) Math.round(ratio * layers * experts);
  }

  /** Policy name for reports. */
  public abstract String name();

  /** Eviction priority of a resident key: the lowest is evicted first. */
  protected abstract double priority(int key);

  /**
   * Routing of one layer over a batch: {@code ids} holds tokens x topK expert ids (every token
   * counts), {@code scores} tokens x experts routing probabilities or null where unknown.
   */
  public abstract void observe(int layer, int[] ids, int tokens, int topK, float[] scores);

  /** Whether run-time transfers may take a slot (false for the static placements). */
  public boolean dynamic() {
    return true;
  }

  /**
   * Whether a key may replace the victim; policies that bypass (Belady) or gate admission on value
   * (MRS prefetch) override. Demand transfers of a dynamic cache are admitted by default.
   */
  protected boolean admit(int key, int victimKey) {
    return true;
  }

  public Capacity capacity() {
    return capacity;
  }

  public int slots() {
    return slots;
  }

  public int layers() {
    return layers;
  }

  public int experts() {
    return experts;
  }

  /** The simulator's clock, for in-flight checks (ms). */
  public void setNow(double nowMs) {
    this.now = nowMs;
  }

  public double now() {
    return now;
  }

  public boolean resident(int layer, int expert) {
    return keySlot[layer * experts + expert] >= 0;
  }

  /** When the expert's copy lands (<= now: usable). Only meaningful when resident. */
  public double arrival(int layer, int expert) {
    return arrival[layer * experts + expert];
  }

  public int slotOf(int layer, int expert) {
    return keySlot[layer * experts + expert];
  }

  /** Number of resident experts. */
  public int residentCount() {
    int c = 0;
    for (int k : slotKey) {
      if (k >= 0) {
        c++;
      }
    }
    return c;
  }

  /** Fills free slots with keys in the given order (initial placement); returns how many fit. */
  public int preload(int[] keys) {
    int placed = 0;
    for (int key : keys) {
      if (keySlot[key] >= 0) {
        continue;
      }
      int s = freeSlot(key / experts);
      if (s >= 0) {
        put(key, s, Double.NEGATIVE_INFINITY);
        placed++;
      }
    }
    return placed;
  }

  @Override
  public Slot allocate(int layer, int expert, int[] needed) {
    return allocate(layer, expert, needed, now, true);
  }

  /**
   * Takes a slot for the key, to be usable at {@code arrivalMs}; {@code demand} false for a
   * prefetch (admission may then refuse). Returns the slot and victim, or STAGING.
   */
  public Slot allocate(int layer, int expert, int[] needed, double arrivalMs, boolean demand) {
    return allocate(layer, expert, needed, arrivalMs, demand, Double.NaN);
  }

  /**
   * As above; a prefetch ({@code demand} false) with a value (not NaN) evicts only a victim whose
   * priority is below that value (the policy's score in the same units: MRS compares scores).
   */
  public Slot allocate(int layer, int expert, int[] needed, double arrivalMs, boolean demand, double value) {
    int key = layer * experts + expert;
    if (keySlot[key] >= 0) {
      return new Slot(keySlot[key], -1, -1);
    }
    if (!dynamic() || slots == 0) {
      return STAGING;
    }
    int free = freeSlot(layer);
    if (free >= 0) {
      if (!demand && !admit(key, -1)) {
        return STAGING;
      }
      put(key, free, arrivalMs);
      return new Slot(free, -1, -1);
    }
    stamp++;
    for (int e : needed) {
      neededStamp[layer * experts + e] = stamp;
    }
    int victimSlot = -1;
    double best = Double.POSITIVE_INFINITY;
    int from = capacity == Capacity.PER_LAYER ? layer * perPool : 0;
    for (int s = from; s < from + perPool; s++) {
      int k = slotKey[s];
      if (k < 0 || neededStamp[k] == stamp || busyStamp[k] == busyEpoch || arrival[k] > now) {
        continue;
      }
      double p = priority(k);
      if (p < best) {
        best = p;
        victimSlot = s;
      }
    }
    if (victimSlot < 0) {
      return STAGING;
    }
    int victim = slotKey[victimSlot];
    if (!demand && !Double.isNaN(value) && !(best < value)) {
      return STAGING;
    }
    if (!admit(key, victim)) {
      return STAGING;
    }
    evict(victimSlot);
    put(key, victimSlot, arrivalMs);
    return new Slot(victimSlot, victim / experts, victim % experts);
  }

  /**
   * Drops a key from its slot without counting an eviction: a transfer that was planned but never
   * ran (its layer failed), so the cache does not believe in bytes that are not there.
   */
  public void forget(int layer, int expert) {
    int key = layer * experts + expert;
    int s = keySlot[key];
    if (s >= 0) {
      slotKey[s] = -1;
      keySlot[key] = -1;
      prefetchedUnused[key] = false;
    }
  }

  /** Marks a resident key as landed by a prefetch and not yet used. */
  public void markPrefetched(int layer, int expert) {
    prefetchedUnused[layer * experts + expert] = true;
  }

  /** Records a use of a resident expert (for prefetch accounting). */
  public void used(int layer, int expert) {
    int key = layer * experts + expert;
    if (prefetchedUnused[key]) {
      prefetchedUnused[key] = false;
      prefetchUsed++;
    }
  }

  public long prefetchUsed() {
    return prefetchUsed;
  }

  /** Prefetched experts evicted before use (plus, after {@link #closeAccounting}, never used). */
  public long prefetchWasted() {
    return prefetchWasted;
  }

  public long evictions() {
    return evictions;
  }

  /** Counts prefetched experts still unused at the end of a run as wasted. */
  public void closeAccounting() {
    for (int k = 0; k < prefetchedUnused.length; k++) {
      if (prefetchedUnused[k]) {
        prefetchedUnused[k] = false;
        prefetchWasted++;
      }
    }
  }

  private int freeSlot(int layer) {
    int from = capacity == Capacity.PER_LAYER ? layer * perPool : 0;
    for (int s = from; s < from + perPool; s++) {
      if (slotKey[s] < 0) {
        return s;
      }
    }
    return -1;
  }

  private void put(int key, int slot, double arrivalMs) {
    slotKey[slot] = key;
    keySlot[key] = slot;
    arrival[key] = arrivalMs;
    onInsert(key);
  }

  private void evict(int slot) {
    int k = slotKey[slot];
    slotKey[slot] = -1;
    keySlot[k] = -1;
    evictions++;
    if (prefetchedUnused[k]) {
      prefetchedUnused[k] = false;
      prefetchWasted++;
    }
  }

  /** Hook: a key took a slot. */
  protected void onInsert(int key) {}
}
