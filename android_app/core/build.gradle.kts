// Pure Java: no Android imports, so CI compiles and tests it with plain javac (scripts/test-core.sh).
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_11
    targetCompatibility = JavaVersion.VERSION_11
}

dependencies {
    // org.json is part of the Android platform; on the JVM the tests use AOSP's copy.
    compileOnly(libs.android.json)
    testImplementation(libs.android.json)
    testImplementation(libs.junit)
}

tasks.test {
    systemProperty("edgekit.vectors", rootProject.file("protocol/vectors").absolutePath)
}
