package android.os;

/** Compile-time stub of the Android API the app calls. */
public class Build {
    public static final String MODEL = "";
    public static final String MANUFACTURER = "";
    public static final String SOC_MODEL = "";
    public static final String FINGERPRINT = "";

    public static class VERSION {
        public static final int SDK_INT = 0;
    }
}
