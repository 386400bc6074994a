"""The content branch's base: the content side's tables, and the shared layer's scheduling tables (`leases`,
`task_runs`), as they stood at the end of the single history from before the split (legacy revision 0011).

The shared layer (`feeds.core`) has no branch of its own: every database has this branch, and the content side's
jobs are what the scheduler runs first, so its tables are created here. Databases made before the split already have
all of this; `feeds.db.migrate` records this revision on them instead of running it.

Revision ID: feeds_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "feeds_0001"
down_revision = None
branch_labels = ("feeds",)
depends_on = None


def upgrade() -> None:
    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    op.create_table('task_runs',
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('task', 'scheduled_at', name=op.f('pk_task_runs'))
    )
    op.create_table('categories',
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('slug', name=op.f('pk_categories'))
    )
    op.create_table('sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('location', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('fetch_url', sa.Text(), nullable=True),
    sa.Column('etag', sa.Text(), nullable=True),
    sa.Column('last_modified', sa.Text(), nullable=True),
    sa.Column('body_hash', sa.String(length=64), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('clock_warning', sa.Text(), nullable=True),
    sa.Column('skipped_items', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_skip', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sources')),
    sa.UniqueConstraint('name', name=op.f('uq_sources_name'))
    )
    op.create_table('articles',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('identity', sa.Text(), nullable=False),
    sa.Column('guid', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('content_html', sa.Text(), nullable=False),
    sa.Column('byline', sa.String(length=200), nullable=True),
    sa.Column('author_email', sa.String(length=320), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('image_url', sa.Text(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('external_views', sa.Integer(), nullable=True),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('bylines', sa.JSON(), server_default='[]', nullable=False),
    sa.ForeignKeyConstraint(['category'], ['categories.slug'], name=op.f('fk_articles_category_categories')),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_articles_source_id_sources'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_articles')),
    sa.UniqueConstraint('identity', name=op.f('uq_articles_identity'))
    )
    op.create_index(op.f('ix_articles_category_published_at'), 'articles', ['category', 'published_at'], unique=False)
    op.create_index(op.f('ix_articles_changed_at'), 'articles', ['changed_at'], unique=False)
    op.create_index(op.f('ix_articles_published_at'), 'articles', ['published_at'], unique=False)
    op.create_index(op.f('ix_articles_url'), 'articles', ['url'], unique=True)
    op.create_table('article_categories',
    sa.Column('article_id', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_article_categories_article_id_articles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('article_id', 'category', name=op.f('pk_article_categories'))
    )
    op.create_index(op.f('ix_article_categories_category'), 'article_categories', ['category'], unique=False)
    op.create_table('article_views',
    sa.Column('article_id', sa.String(length=16), nullable=False),
    sa.Column('hour_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('views', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_article_views_article_id_articles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('article_id', 'hour_at', name=op.f('pk_article_views'))
    )
    op.create_index(op.f('ix_article_views_hour_at'), 'article_views', ['hour_at'], unique=False)
    op.create_table('article_clicks',
    sa.Column('article_id', sa.String(length=16), nullable=False),
    sa.Column('hour_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_article_clicks_article_id_articles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('article_id', 'hour_at', 'channel', name=op.f('pk_article_clicks'))
    )
    op.create_table('campaign_clicks',
    sa.Column('campaign', sa.String(length=64), nullable=False),
    sa.Column('article_id', sa.String(length=16), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_campaign_clicks_article_id_articles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign', 'article_id', name=op.f('pk_campaign_clicks'))
    )
    op.create_table('partners',
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('full_content', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('include_images', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('embargo_minutes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('utm', sa.JSON(), nullable=True),
    sa.Column('attribution', sa.Text(), nullable=True),
    sa.Column('callback_url', sa.Text(), nullable=True),
    sa.Column('push_secret', sa.Text(), nullable=True),
    sa.Column('rate_limit', sa.Integer(), nullable=True),
    sa.Column('push_since_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('origin', sa.String(length=16), server_default='config', nullable=False),
    sa.PrimaryKeyConstraint('slug', name=op.f('pk_partners'))
    )
    op.create_table('partner_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_slug', sa.String(length=64), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['partner_slug'], ['partners.slug'], name=op.f('fk_partner_keys_partner_slug_partners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_partner_keys_key_hash'))
    )
    op.create_table('partner_usage',
    sa.Column('partner_slug', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('not_modified', sa.Integer(), nullable=False),
    sa.Column('rate_limited', sa.Integer(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('last_fetch_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['partner_slug'], ['partners.slug'], name=op.f('fk_partner_usage_partner_slug_partners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('partner_slug', 'day', name=op.f('pk_partner_usage'))
    )
    op.create_table('partner_articles',
    sa.Column('partner_slug', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('article_id', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_partner_articles_article_id_articles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['partner_slug'], ['partners.slug'], name=op.f('fk_partner_articles_partner_slug_partners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('partner_slug', 'day', 'article_id', name=op.f('pk_partner_articles'))
    )
    op.create_table('partner_pushes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_slug', sa.String(length=64), nullable=False),
    sa.Column('article_id', sa.String(length=16), nullable=False),
    sa.Column('delivery_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('parked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_partner_pushes_article_id_articles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['partner_slug'], ['partners.slug'], name=op.f('fk_partner_pushes_partner_slug_partners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_pushes')),
    sa.UniqueConstraint('delivery_id', name=op.f('uq_partner_pushes_delivery_id')),
    sa.UniqueConstraint('partner_slug', 'article_id', name=op.f('uq_partner_pushes_partner_slug_article_id'))
    )
    op.create_index(op.f('ix_partner_pushes_status_next_attempt_at'), 'partner_pushes', ['status', 'next_attempt_at'], unique=False)
    op.create_table('published_feeds',
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('slug', name=op.f('pk_published_feeds'))
    )
    op.create_table('feed_archives',
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('slug', 'month', name=op.f('pk_feed_archives'))
    )


def downgrade() -> None:
    op.drop_table('feed_archives')
    op.drop_table('published_feeds')
    op.drop_index(op.f('ix_partner_pushes_status_next_attempt_at'), table_name='partner_pushes')
    op.drop_table('partner_pushes')
    op.drop_table('partner_articles')
    op.drop_table('partner_usage')
    op.drop_table('partner_keys')
    op.drop_table('partners')
    op.drop_table('campaign_clicks')
    op.drop_table('article_clicks')
    op.drop_index(op.f('ix_article_views_hour_at'), table_name='article_views')
    op.drop_table('article_views')
    op.drop_index(op.f('ix_article_categories_category'), table_name='article_categories')
    op.drop_table('article_categories')
    op.drop_index(op.f('ix_articles_category_published_at'), table_name='articles')
    op.drop_index(op.f('ix_articles_changed_at'), table_name='articles')
    op.drop_index(op.f('ix_articles_published_at'), table_name='articles')
    op.drop_index(op.f('ix_articles_url'), table_name='articles')
    op.drop_table('articles')
    op.drop_table('sources')
    op.drop_table('categories')
    op.drop_table('task_runs')
    op.drop_table('leases')
