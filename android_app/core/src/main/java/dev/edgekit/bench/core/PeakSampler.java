package dev.edgekit.bench.core;

/**
 * Samples memory on a background thread while the model runs and keeps the largest value of each
 * figure, as benchmark_model's peak-memory monitor does: VmHWM is a high-water mark already, but
 * PSS (what Android's memory accounting charges, graphics included) is only known when sampled.
 * The last sample is taken when the sampler is closed.
 */
final class PeakSampler implements AutoCloseable {
    private final MemoryProbe probe;
    private final Thread thread;
    private volatile boolean running = true;
    private long rss;
    private long hwm;
    private Long pss;
    private Long gfx;

    PeakSampler(MemoryProbe probe, long intervalMs) {
        this.probe = probe;
        this.thread = new Thread(() -> {
            while (running) {
                sample();
                try {
                    Thread.sleep(intervalMs);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "edgekit-peak-memory");
        thread.setDaemon(true);
        thread.start();
    }

    private synchronized void sample() {
        MemorySnapshot m = probe.snapshot();
        rss = Math.max(rss, m.vmRssKb);
        hwm = Math.max(hwm, m.vmHwmKb);
        pss = max(pss, m.pssTotalKb);
        gfx = max(gfx, m.pssGraphicsKb);
    }

    private static Long max(Long a, Long b) {
        return a == null ? b : b == null ? a : Long.valueOf(Math.max(a, b));
    }

    /** The largest of each figure over every sample (the closing one included). */
    synchronized MemorySnapshot peak() {
        return new MemorySnapshot(rss, hwm, pss, gfx);
    }

    @Override
    public void close() {
        running = false;
        thread.interrupt();
        try {
            thread.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        sample();
    }
}
