package android.app;

import android.content.Context;
import android.content.Intent;
import android.os.Bundle;

/** Compile-time stub of the Android API the app calls. */
public class Instrumentation {
    public void onCreate(Bundle arguments) {}

    public void start() {}

    public void onStart() {}

    public void finish(int resultCode, Bundle results) {}

    public void sendStatus(int resultCode, Bundle results) {}

    public Context getTargetContext() {
        return null;
    }

    public Activity startActivitySync(Intent intent) {
        return null;
    }

    public void runOnMainSync(Runnable runner) {}
}
