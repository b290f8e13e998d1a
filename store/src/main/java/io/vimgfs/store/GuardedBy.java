package io.vimgfs.store;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * The lock a field is read and written under, or that a method must be called with held (as
 * jimfs and JCIP spell it). {@code "store lock"} means both parts of {@link StoreLock}; other
 * values name a monitor. Checked in review, not by the compiler.
 */
@Documented
@Retention(RetentionPolicy.CLASS)
@Target({ElementType.FIELD, ElementType.METHOD})
@interface GuardedBy {
    String value();
}
