package io.newsflow.analysis;

import java.util.List;
import java.util.regex.Pattern;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.ar.ArabicNormalizationFilter;
import org.apache.lucene.analysis.ar.ArabicStemFilter;
import org.apache.lucene.analysis.core.DecimalDigitFilter;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.elasticsearch.plugin.Inject;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.elasticsearch.plugin.settings.AnalysisSettings;
import org.elasticsearch.plugin.settings.BooleanSetting;
import org.elasticsearch.plugin.settings.ListSetting;

/**
 * The token filters of analysis-common that the index template's own {@code arabic} analyzer is
 * built from, under the same names and with the same settings: {@code decimal_digit},
 * {@code arabic_normalization}, {@code arabic_stem}, {@code pattern_capture} and
 * {@code remove_duplicates}.
 *
 * <p>Each is the Lucene filter analysis-common wraps ({@code DecimalDigitFilterFactory},
 * {@code ArabicNormalizationFilterFactory}, {@code ArabicStemTokenFilterFactory},
 * {@code PatternCaptureGroupTokenFilterFactory}, {@code RemoveDuplicatesTokenFilterFactory}), so an index analysed here and on the official
 * distribution (which has these names built in and must not get this plugin) holds the same
 * terms. Every class must also be listed in {@code named_components.json}.
 */
public final class ArabicTokenFilters {
    private ArabicTokenFilters() {}

    /** Unicode decimal digits (Arabic-Indic ٠١٢, Extended ۰۱۲, ...) to ASCII 0-9. */
    @NamedComponent("decimal_digit")
    public static final class DecimalDigit implements TokenFilterFactory {
        @Override
        public TokenStream create(TokenStream tokenStream) {
            return new DecimalDigitFilter(tokenStream);
        }

        @Override
        public TokenStream normalize(TokenStream tokenStream) {
            return new DecimalDigitFilter(tokenStream);
        }
    }

    /** Alef forms to bare alef, teh marbuta to heh, alef maksura to yeh; no tatweel, no harakat. */
    @NamedComponent("arabic_normalization")
    public static final class ArabicNormalization implements TokenFilterFactory {
        @Override
        public TokenStream create(TokenStream tokenStream) {
            return new ArabicNormalizationFilter(tokenStream);
        }

        @Override
        public TokenStream normalize(TokenStream tokenStream) {
            return new ArabicNormalizationFilter(tokenStream);
        }
    }

    /** Lucene's light10-style stemmer: one prefix (ال وال بال كال فال لل و), then suffixes. */
    @NamedComponent("arabic_stem")
    public static final class ArabicStem implements TokenFilterFactory {
        @Override
        public TokenStream create(TokenStream tokenStream) {
            return new ArabicStemFilter(tokenStream);
        }
    }

    /**
     * Emits every capture group of every matching pattern as a token at the same position,
     * plus (with {@code preserve_original}, the default) the original token.
     */
    @NamedComponent("pattern_capture")
    public static final class PatternCapture implements TokenFilterFactory {

        /** The settings of analysis-common's pattern_capture filter. */
        @AnalysisSettings
        public interface Settings {
            @ListSetting(path = "patterns")
            List<String> patterns();

            @BooleanSetting(path = "preserve_original", defaultValue = true)
            boolean preserveOriginal();
        }

        private final Pattern[] patterns;
        private final boolean preserveOriginal;

        /**
         * Elasticsearch also builds one instance of every named filter with empty settings (the
         * by-name default, {@code "filter": ["pattern_capture"]}): without patterns it passes
         * tokens through instead of failing every index creation. analysis-common has no such
         * default and refuses a definition without patterns.
         */
        @Inject
        public PatternCapture(Settings settings) {
            List<String> sources = settings.patterns();
            this.patterns = sources == null
                    ? new Pattern[0]
                    : sources.stream().map(Pattern::compile).toArray(Pattern[]::new);
            this.preserveOriginal = settings.preserveOriginal();
        }

        @Override
        public TokenStream create(TokenStream tokenStream) {
            if (patterns.length == 0) {
                return tokenStream;
            }
            return new PatternCaptureGroupTokenFilter(tokenStream, preserveOriginal, patterns);
        }
    }

    /** Drops a token equal to another at the same position (a capture that stems like its word). */
    @NamedComponent("remove_duplicates")
    public static final class RemoveDuplicates implements TokenFilterFactory {
        @Override
        public TokenStream create(TokenStream tokenStream) {
            return new RemoveDuplicatesTokenFilter(tokenStream);
        }
    }
}
