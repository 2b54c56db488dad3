package androidx.annotation;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Compile-time stub of AndroidX's Nullable, which Kotlin reads as "this may be null". The stubs
 * put it where the real library returns null (documented or in its code) so that Kotlin code
 * that forgets the null case fails to compile here, as it would crash on the phone.
 */
@Retention(RetentionPolicy.CLASS)
@Target({ElementType.METHOD, ElementType.PARAMETER, ElementType.FIELD})
public @interface Nullable {}
