/**
 * The page owns its render rate: frames mark panels dirty, and one
 * requestAnimationFrame callback draws the dirty ones at most `maxPerSecond`
 * times a second. Data is latest-value (the models replace rows by key), so a
 * burst of frames costs one draw, and a hidden tab draws nothing at all.
 */
export class RenderLoop {
  /**
   * @param {(dirty: Set<string>) => void} draw draws the named panels
   * @param {{maxPerSecond?: number}} options default 15 draws a second
   */
  constructor(draw, { maxPerSecond = 15 } = {}) {
    this.draw = draw;
    this.minGapMs = 1000 / maxPerSecond;
    this.dirty = new Set();
    this.lastDrawAt = 0;
    this.pending = false;
    this.paused = false;
    this.draws = 0;
  }

  /** Mark panels to draw on the next frame. */
  mark(...panels) {
    for (const panel of panels) this.dirty.add(panel);
    this.schedule();
  }

  /** Stop drawing (data keeps arriving into the models); resume() draws what changed. */
  pause() {
    this.paused = true;
  }

  resume() {
    this.paused = false;
    this.schedule();
  }

  schedule() {
    if (this.pending || this.paused || this.dirty.size === 0) return;
    this.pending = true;
    requestAnimationFrame((now) => this.tick(now));
  }

  tick(now) {
    this.pending = false;
    if (this.paused) return;
    if (now - this.lastDrawAt < this.minGapMs) {
      this.pending = true;
      requestAnimationFrame((later) => this.tick(later));
      return;
    }
    this.lastDrawAt = now;
    const dirty = this.dirty;
    this.dirty = new Set();
    this.draws += 1;
    this.draw(dirty);
  }
}
