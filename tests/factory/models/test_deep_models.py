"""Architecture checks of the sequence models (the contract runs in test_models.py)."""

from __future__ import annotations

import pytest
import torch

from factory.models import MODELS, get_model
from factory.models.deep import SequenceModel, count_parameters
from factory.models.itransformer import ITransformerNet
from factory.models.patchtst import PatchTSTNet, RevIN
from factory.models.tcn import TCNNet
from factory.models.tft import TFTNet

N_FEATURES = 7
SEQUENCE_MODELS = sorted(n for n in MODELS if get_model(n).kind == "sequence")


def net_of(name: str, profile: str = "tiny", n_features: int = N_FEATURES, **overrides):
    torch.manual_seed(0)
    cls = get_model(name)
    p = cls.params_from(profile, {k: str(v) for k, v in overrides.items()})
    return cls.build_net(n_features, p).eval(), p


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
@pytest.mark.parametrize("profile", ["tiny", "default"])
def test_every_sequence_model_maps_windows_to_three_logits(name, profile):
    assert issubclass(get_model(name), SequenceModel)
    net, p = net_of(name, profile)
    with torch.no_grad():
        out = net(torch.randn(4, p.lookback, N_FEATURES))
    assert out.shape == (4, 3) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert count_parameters(net) > 0


# --- TCN -------------------------------------------------------------------------------


def test_tcn_convolutions_are_causal_within_the_receptive_field():
    net, p = net_of("tcn", dropout=0.0)  # 3 levels, kernel 3: receptive field 29
    field = 1 + 2 * (p.kernel_size - 1) * (2**p.num_levels - 1)
    x = torch.randn(2, N_FEATURES, 48)  # (batch, features, time), as the conv stack takes it
    with torch.no_grad():
        before = net.tcn(x)
        for t in (0, 5, 20, 47):
            changed = x.clone()
            changed[:, :, t] += 1.0
            after = net.tcn(changed)
            torch.testing.assert_close(after[..., :t], before[..., :t], rtol=0, atol=1e-6)
            assert (after[..., t] - before[..., t]).abs().max() > 1e-4
            # nothing past the receptive field moves either
            past = t + field
            torch.testing.assert_close(after[..., past:], before[..., past:], rtol=0, atol=1e-6)
    assert isinstance(net, TCNNet) and field == 29


# --- PatchTST --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lookback", "patch_len", "stride", "n_patches"), [(64, 16, 8, 8), (16, 8, 8, 3), (32, 8, 4, 8)]
)
def test_patchtst_patch_count(lookback, patch_len, stride, n_patches):
    net, _ = net_of("patchtst", lookback=lookback, patch_len=patch_len, stride=stride)
    assert isinstance(net, PatchTSTNet) and net.n_patches == n_patches
    x = torch.arange(2 * N_FEATURES * lookback, dtype=torch.float32)
    x = x.reshape(2, N_FEATURES, lookback)
    patches = net.patchify(x)
    assert patches.shape == (2, N_FEATURES, n_patches, patch_len)
    torch.testing.assert_close(patches[:, :, 1], x[:, :, stride : stride + patch_len])
    # the last patch is padded at the end with copies of the last value
    assert (patches[:, :, -1, -1] == x[:, :, -1]).all()


def test_revin_normalises_each_series_and_round_trips():
    torch.manual_seed(1)
    revin = RevIN(N_FEATURES)
    with torch.no_grad():
        revin.weight.uniform_(0.5, 2.0)
        revin.bias.normal_()
    x = torch.randn(3, 32, N_FEATURES) * 5 + torch.randn(1, 1, N_FEATURES) * 10
    y, stats = revin.normalize(x)
    plain = (y - revin.bias) / revin.weight
    torch.testing.assert_close(plain.mean(dim=1), torch.zeros(3, N_FEATURES), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        plain.std(dim=1, unbiased=False), torch.ones(3, N_FEATURES), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(revin.denormalize(y, stats), x, atol=1e-4, rtol=1e-5)


def test_patchtst_encodes_every_feature_on_its_own():
    net, p = net_of("patchtst")
    x = torch.randn(2, p.lookback, N_FEATURES)
    changed = x.clone()
    changed[:, :, 3] = torch.randn(2, p.lookback)
    with torch.no_grad():
        before, after = net.encode(x), net.encode(changed)
    assert before.shape == (2, N_FEATURES, net.n_patches, p.d_model)
    keep = [i for i in range(N_FEATURES) if i != 3]
    torch.testing.assert_close(after[:, keep], before[:, keep], rtol=0, atol=1e-6)
    assert (after[:, 3] - before[:, 3]).abs().max() > 1e-3


# --- iTransformer ----------------------------------------------------------------------


@pytest.mark.parametrize(("n_features", "lookback"), [(7, 16), (11, 32)])
def test_itransformer_has_one_token_per_variate(n_features, lookback):
    net, p = net_of("itransformer", n_features=n_features, lookback=lookback, n_heads=2)
    assert isinstance(net, ITransformerNet)
    x = torch.randn(2, lookback, n_features)
    with torch.no_grad():
        tokens = net.tokens(x)
        assert tokens.shape == (2, n_features, p.d_model)
        # no position among variates: permuting the tokens permutes the encoded tokens
        perm = torch.randperm(n_features)
        torch.testing.assert_close(net.encoder(tokens[:, perm]), net.encoder(tokens)[:, perm])


# --- TFT -------------------------------------------------------------------------------


def test_tft_variable_selection_weights_sum_to_one():
    net, p = net_of("tft")
    assert isinstance(net, TFTNet)
    x = torch.randn(5, p.lookback, N_FEATURES)
    with torch.no_grad():
        selected, weights = net.select(x)
    assert selected.shape == (5, p.lookback, p.hidden_size)
    assert weights.shape == (5, p.lookback, N_FEATURES) and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(5, p.lookback))


def test_tft_attention_shares_values_and_is_causal():
    net, p = net_of("tft", hidden_size=16, n_heads=4)
    attn = net.attn
    assert attn.v.out_features == attn.d_head == 4 and attn.q.out_features == 16
    x = torch.randn(2, p.lookback, 16)
    changed = x.clone()
    changed[:, 5] += 1.0
    with torch.no_grad():
        before, after = attn(x), attn(changed)
    torch.testing.assert_close(after[:, :5], before[:, :5], rtol=0, atol=1e-6)
    assert (after[:, 5:] - before[:, 5:]).abs().max() > 1e-4
