package dev.edgekit.bench.core;

/** Thermal status (0 none .. 6 shutdown, PowerManager's scale) and headroom; null where unknown. */
public interface ThermalProbe {
    Integer status();

    Double headroom();

    ThermalProbe NONE = new ThermalProbe() {
        @Override
        public Integer status() {
            return null;
        }

        @Override
        public Double headroom() {
            return null;
        }
    };
}
