package android.os;

/** Compile-time stub of the Android API the app calls. */
public final class Debug {
    public static class MemoryInfo {
        public MemoryInfo() {}

        public int getTotalPss() {
            return 0;
        }

        public String getMemoryStat(String statName) {
            return null;
        }
    }

    public static void getMemoryInfo(MemoryInfo memoryInfo) {}
}
