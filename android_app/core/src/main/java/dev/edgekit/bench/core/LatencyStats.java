package dev.edgekit.bench.core;

import java.util.Arrays;

/** Summary of raw timings (the host recomputes these; the app shows them in its status). */
public final class LatencyStats {
    public final int count;
    public final double mean;
    public final double std;
    public final double min;
    public final double max;
    public final double p50;
    public final double p90;
    public final double p99;
    public final double trimmedMean;

    private LatencyStats(double[] sorted, double trim) {
        count = sorted.length;
        double sum = 0;
        for (double v : sorted) {
            sum += v;
        }
        mean = sum / count;
        double ss = 0;
        for (double v : sorted) {
            ss += (v - mean) * (v - mean);
        }
        std = count > 1 ? Math.sqrt(ss / (count - 1)) : 0.0;
        min = sorted[0];
        max = sorted[count - 1];
        p50 = percentile(sorted, 50);
        p90 = percentile(sorted, 90);
        p99 = percentile(sorted, 99);
        int k = (int) (count * trim);
        double t = 0;
        int n = 0;
        int from = count - 2 * k > 0 ? k : 0;
        int to = count - 2 * k > 0 ? count - k : count;
        for (int i = from; i < to; i++) {
            t += sorted[i];
            n++;
        }
        trimmedMean = t / n;
    }

    /** Linear interpolation between closest ranks, as numpy.percentile's default. */
    static double percentile(double[] sorted, double q) {
        double pos = (sorted.length - 1) * q / 100.0;
        int lo = (int) Math.floor(pos);
        int hi = (int) Math.ceil(pos);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }

    /** The median of {@code values} (0 for none). */
    public static double median(double[] values) {
        if (values.length == 0) {
            return 0.0;
        }
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return percentile(sorted, 50);
    }

    public static LatencyStats of(double[] timingsMs) {
        if (timingsMs.length == 0) {
            throw new IllegalArgumentException("no timings");
        }
        double[] sorted = timingsMs.clone();
        Arrays.sort(sorted);
        return new LatencyStats(sorted, 0.1);
    }
}
