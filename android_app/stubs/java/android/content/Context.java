package android.content;

import java.io.File;

/** Compile-time stub of the Android API the app calls (signatures from the public reference). */
public abstract class Context {
    public abstract File getExternalFilesDir(String type);

    public abstract Context getApplicationContext();

    public abstract <T> T getSystemService(Class<T> serviceClass);
}
