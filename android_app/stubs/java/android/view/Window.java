package android.view;

/** Compile-time stub of the Android API the app calls. */
public abstract class Window {
    public void addFlags(int flags) {}
}
