package android.app;

import android.content.Context;
import android.content.Intent;
import android.os.Bundle;
import android.view.View;
import android.view.Window;

/** Compile-time stub of the Android API the app calls. */
public class Activity extends Context {
    public static final int RESULT_CANCELED = 0;
    public static final int RESULT_OK = -1;

    protected void onCreate(Bundle savedInstanceState) {}

    public Window getWindow() {
        return null;
    }

    public Intent getIntent() {
        return null;
    }

    public void setContentView(View view) {}

    public final void runOnUiThread(Runnable action) {}

    public void finish() {}

    @Override
    public java.io.File getExternalFilesDir(String type) {
        return null;
    }

    @Override
    public Context getApplicationContext() {
        return this;
    }

    @Override
    public <T> T getSystemService(Class<T> serviceClass) {
        return null;
    }
}
