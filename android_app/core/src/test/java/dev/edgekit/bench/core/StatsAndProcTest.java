package dev.edgekit.bench.core;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

/** Latency statistics (numpy's linear percentiles) and /proc/self/status parsing. */
public class StatsAndProcTest {
    @Test
    public void statsMatchHandComputedValues() {
        LatencyStats s = LatencyStats.of(new double[] {4, 1, 3, 2, 10});
        assertEquals(5, s.count);
        assertEquals(4.0, s.mean, 1e-12);
        assertEquals(1.0, s.min, 0);
        assertEquals(10.0, s.max, 0);
        assertEquals(3.0, s.p50, 1e-12);
        assertEquals(7.6, s.p90, 1e-12); // 4 + (10 - 4) * 0.6
        assertEquals(9.76, s.p99, 1e-12);
        assertEquals(Math.sqrt(12.5), s.std, 1e-12);
        assertEquals(4.0, s.trimmedMean, 1e-12); // 10% of 5 trims nothing
    }

    @Test
    public void trimmedMeanDropsTheTails() {
        double[] t = new double[10];
        for (int i = 0; i < 10; i++) {
            t[i] = i == 9 ? 100 : 1;
        }
        assertEquals(1.0, LatencyStats.of(t).trimmedMean, 1e-12);
    }

    @Test
    public void procStatus() {
        MemorySnapshot m = ProcStatus.parse("Name:\tbench\nVmHWM:\t  123456 kB\nVmRSS:\t   98765 kB\nThreads:\t9\n");
        assertEquals(98765, m.vmRssKb);
        assertEquals(123456, m.vmHwmKb);
        assertEquals(0, ProcStatus.parse("garbage").vmRssKb);
        MemorySnapshot self = ProcStatus.self();
        assertEquals(true, self.vmHwmKb >= self.vmRssKb);
    }
}
