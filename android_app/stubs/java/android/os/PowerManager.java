package android.os;

/** Compile-time stub of the Android API the app calls. */
public final class PowerManager {
    public int getCurrentThermalStatus() {
        return 0;
    }

    public float getThermalHeadroom(int forecastSeconds) {
        return 0f;
    }
}
