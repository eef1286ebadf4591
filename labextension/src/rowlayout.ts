/**
 * Windowing for rows of variable height: row i occupies `heights[i]` pixels.
 * `offsets` is the prefix sum, so finding the first visible row is a binary search.
 */
export class RowLayout {
  constructor(heights: ArrayLike<number>) {
    const n = heights.length;
    this.offsets = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) {
      this.offsets[i + 1] = this.offsets[i] + heights[i];
    }
  }

  readonly offsets: Float64Array;

  get total(): number {
    return this.offsets[this.offsets.length - 1];
  }

  get count(): number {
    return this.offsets.length - 1;
  }

  /** The row at pixel offset y. */
  indexAt(y: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.offsets[mid + 1] <= y) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return Math.min(lo, Math.max(0, this.count - 1));
  }

  /** [first, last) rows to render for a viewport, with overscan. */
  range(scrollTop: number, height: number, overscan = 20): [number, number] {
    if (this.count === 0) {
      return [0, 0];
    }
    const first = Math.max(0, this.indexAt(scrollTop) - overscan);
    const last = Math.min(this.count, this.indexAt(scrollTop + height) + 1 + overscan);
    return [first, last];
  }
}
