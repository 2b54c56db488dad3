package android.widget;

import android.content.Context;
import android.view.View;

/** Compile-time stub of the Android API the app calls. */
public class TextView extends View {
    public TextView(Context context) {
        super(context);
    }

    public CharSequence getText() {
        return "";
    }

    public final void setText(CharSequence text) {}

    public float getTextSize() {
        return 0f;
    }

    public void setTextSize(float size) {}
}
