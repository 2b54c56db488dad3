package android.os;

/** Compile-time stub of the Android API the app calls. */
public final class Bundle {
    public Bundle() {}

    public String getString(String key) {
        return null;
    }

    public void putString(String key, String value) {}
}
