package android.os;

/** Compile-time stub of android.os.Process (AOSP frameworks/base core/java/android/os/Process.java). */
public class Process {
    /** The identifier of this process, as used with killProcess and sendSignal. */
    public static final int myPid() {
        return 0;
    }
}
