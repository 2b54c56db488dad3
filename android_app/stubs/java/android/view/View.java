package android.view;

import android.content.Context;

/** Compile-time stub of the Android API the app calls. */
public class View {
    public View(Context context) {}
}
