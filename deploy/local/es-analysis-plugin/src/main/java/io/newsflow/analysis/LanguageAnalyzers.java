package io.newsflow.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.ar.ArabicAnalyzer;
import org.apache.lucene.analysis.cjk.CJKAnalyzer;
import org.apache.lucene.analysis.de.GermanAnalyzer;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.apache.lucene.analysis.es.SpanishAnalyzer;
import org.apache.lucene.analysis.fa.PersianAnalyzer;
import org.apache.lucene.analysis.fr.FrenchAnalyzer;
import org.apache.lucene.analysis.ru.RussianAnalyzer;
import org.apache.lucene.analysis.tr.TurkishAnalyzer;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.AnalyzerFactory;

/**
 * The language analyzers of Elasticsearch's analysis-common module, under the same names.
 *
 * <p>Elasticsearch's built-in analyzer {@code "arabic"} (and the others here) is Lucene's analyzer
 * built with its default constructor: default stop words, no stem exclusions (see
 * {@code CommonAnalysisPlugin#getPreBuiltAnalyzerProviderFactories}). These factories do exactly
 * that, so an index analysed here and one analysed by the official distribution produce the same
 * terms. Only the plain names are provided, not the configurable analyzer types
 * ({@code "type": "arabic", "stopwords": ...}).
 *
 * <p>Each nested class is one named component; {@code named_components.json} (in
 * {@code src/main/plugin-metadata}) must list every one of them: Elasticsearch reads that file
 * and does not scan the jar.
 */
public final class LanguageAnalyzers {
    private LanguageAnalyzers() {}

    /** Normalisation (alef/yeh/teh marbuta, diacritics, tatweel), stop words, light stemming. */
    @NamedComponent("arabic")
    public static final class Arabic implements AnalyzerFactory {
        @Override
        public Analyzer create() {
            return new ArabicAnalyzer();
        }
    }

    @NamedComponent("english")
    public static final class English implements AnalyzerFactory {
        @Override
        public Analyzer create() {
            return new EnglishAnalyzer();
        }
    }

    @NamedComponent("french")
    public static final class French implements AnalyzerFactory {
        @Override
        public Analyzer create() {
            return new FrenchAnalyzer();
        }
    }

    @NamedComponent("german")
    public static final class German implements AnalyzerFactory {
        @Override
        public Analyzer create() {
            return new GermanAnalyzer();
        }
    }

    @NamedComponent("spanish")
    public static final class Spanish implements AnalyzerFactory {
        @Override
        public Analyzer create() {
            return new SpanishAnalyzer();
        }
    }

    @NamedComponent("russian")
    public static final class Russian implements AnalyzerFactory {
        @Override
        public Analyzer create() {
            return new RussianAnalyzer();
        }
    }

    @NamedComponent("turkish")
    public static final class Turkish implements AnalyzerFactory {
        @Override
        public Analyzer create() {
            return new TurkishAnalyzer();
        }
    }

    @NamedComponent("persian")
    public static final class Persian implements AnalyzerFactory {
        @Override
        public Analyzer create() {
            return new PersianAnalyzer();
        }
    }

    /** Standard tokenizer + CJK width folding + bigrams of Han/Hiragana/Katakana/Hangul. */
    @NamedComponent("cjk")
    public static final class Cjk implements AnalyzerFactory {
        @Override
        public Analyzer create() {
            return new CJKAnalyzer();
        }
    }
}
